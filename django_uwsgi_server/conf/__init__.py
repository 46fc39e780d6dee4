"""runuwsgi configuration: one option registry, three sources, one Config.

``build_config(settings.UWSGI, vars(options))`` gives the effective :class:`Config`;
:func:`add_arguments` puts every option on a management command's parser.
"""

from .cli import add_arguments, parse_addrport, unknown_option_message
from .registry import GROUPS, OPTIONS, ConfigError, Option, get_option, normalize
from .sources import COMMAND_LINE, DEFAULT, SETTINGS, Config, build_config

__all__ = [
    "COMMAND_LINE",
    "DEFAULT",
    "GROUPS",
    "OPTIONS",
    "SETTINGS",
    "Config",
    "ConfigError",
    "Option",
    "add_arguments",
    "build_config",
    "get_option",
    "normalize",
    "parse_addrport",
    "unknown_option_message",
]
