"""Every command has a description and explains every option."""

import pytest

from cryoscape.cli.main import COMMANDS, command_parser, main


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_is_explained(name, capsys):
    parser = command_parser(name)
    assert parser.description and parser.description.strip()
    for action in parser._actions:
        assert action.help, f"{name}: option {action.option_strings or action.dest} has no help"
    with pytest.raises(SystemExit) as done:
        main([name, "--help"])
    assert done.value.code == 0
    assert name in capsys.readouterr().out
