"""The option reference for README.rst, generated from the registry.

``python -m django_uwsgi_server.conf.docs`` prints it; README.rst holds a copy between
``.. BEGIN OPTION REFERENCE`` and ``.. END OPTION REFERENCE`` (a test keeps them equal).
"""

from __future__ import annotations

from .registry import (
    ACCEPTED,
    ADDRESS,
    BOOL,
    ENV,
    GROUPS,
    HEADER,
    INT,
    MODE,
    OPTIONS,
    PATH,
    PLANNED,
    PLANNED_IN,
    SIZE,
    STR,
    UNSUPPORTED,
    Option,
    default_text,
)

_KINDS = {
    STR: "string", PATH: "path", INT: "integer", BOOL: "boolean", SIZE: "size (bytes, k/m/g)",
    MODE: "octal mode", ADDRESS: "address", ENV: "NAME=VALUE", HEADER: "Name: value",
}


def _type(opt: Option) -> str:
    text = _KINDS[opt.kind]
    if opt.kind in (INT, SIZE) and opt.min is not None:
        text += f" ≥ {opt.min}" if opt.max is None else f" {opt.min}–{opt.max}"
    return f"{text} (list)" if opt.repeatable else text


def _status(opt: Option) -> str:
    if opt.status == PLANNED and opt.name in PLANNED_IN:
        return f"planned ({PLANNED_IN[opt.name]})"
    return {ACCEPTED: "accepted, no effect"}.get(opt.status, opt.status)


def _literal(text: str) -> str:
    return f"``{text}``" if text else ""


def _names(opt: Option) -> str:
    names = [_literal(a) for a in opt.aliases]
    if opt.short:
        names.append(_literal(f"-{opt.short}"))
    return ", ".join(names)


def _escape(text: str) -> str:
    # Keep *, | and backquotes in help text from being read as RST markup.
    for ch in "\\*|`":
        text = text.replace(ch, "\\" + ch)
    return text


def _default(opt: Option) -> str:
    text = default_text(opt)
    return _escape(text) if " " in text else _literal(text)  # a description, not a value


def _description(opt: Option) -> str:
    text = opt.help
    if opt.note and opt.status in (ACCEPTED, UNSUPPORTED):
        text += f" — {opt.note}"
    return _escape(text)


def reference_rst() -> str:
    """An RST list-table per option group: name, aliases, type, default, status, help."""
    out: list[str] = []
    for group in GROUPS:
        out += [
            f".. list-table:: {group}",
            "   :header-rows: 1",
            "   :widths: 20 15 15 15 12 40",
            "",
            "   * - Option",
            "     - Aliases",
            "     - Type",
            "     - Default",
            "     - Status",
            "     - Description",
        ]
        for opt in OPTIONS:
            if opt.group != group:
                continue
            cells = (_literal(opt.name), _names(opt), _type(opt),
                     _default(opt), _status(opt), _description(opt))
            out.append(f"   * - {cells[0]}")
            out += [f"     - {cell}".rstrip() for cell in cells[1:]]
        out.append("")
    return "\n".join(out)


def update_readme(path: str) -> None:
    """Rewrite the reference between the README's markers (``--update README.rst``)."""
    begin, end = ".. BEGIN OPTION REFERENCE\n", ".. END OPTION REFERENCE"
    with open(path, encoding="utf-8") as f:
        text = f.read()
    head, _, rest = text.partition(begin)
    _, _, tail = rest.partition(end)
    with open(path, "w", encoding="utf-8") as f:
        f.write(head + begin + reference_rst() + "\n" + end + tail)


if __name__ == "__main__":
    import sys

    if sys.argv[1:2] == ["--update"]:
        update_readme(sys.argv[2])
    else:
        print(reference_rst(), end="")
