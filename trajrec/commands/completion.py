"""``trajrec completion``: a shell completion script, made from the command line's own parser."""

from __future__ import annotations

import argparse

NAME = "completion"
ORDER = 95
HELP = "Print a completion script for bash or zsh (commands, options, their choices, file names)."
EXAMPLES = """  trajrec completion bash > ~/.local/share/bash-completion/completions/trajrec
  echo 'eval "$(trajrec completion bash)"' >> ~/.bashrc
  echo 'eval "$(trajrec completion zsh)"' >> ~/.zshrc"""


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("shell", choices=["bash", "zsh"], help="the shell to complete in")


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:  # argparse keeps its subcommands here; there is no public accessor
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _options(parser: argparse.ArgumentParser) -> tuple[list[str], dict[str, list[str]]]:
    """The option strings of ``parser`` and, for options with a fixed set of values, those values."""
    opts: list[str] = []
    choices: dict[str, list[str]] = {}
    for action in parser._actions:
        opts.extend(s for s in action.option_strings if s.startswith("--") or s == "-h")
        if action.option_strings and action.choices:
            for s in action.option_strings:
                choices[s] = [str(c) for c in action.choices]
    return opts, choices


def _quote(words: list[str]) -> str:
    return " ".join(words).replace("'", "")


def bash_script(parser: argparse.ArgumentParser) -> str:
    """The bash completion function for ``parser`` (``complete -F _trajrec trajrec``)."""
    commands = _subparsers(parser)
    cases: list[str] = []
    value_cases: list[str] = []
    for name, sub in sorted(commands.items()):
        actions = _subparsers(sub)
        opts, choices = _options(sub)
        if actions:  # `trajrec label ACTION`: complete the action, then its options
            cases.append(f"    {name})\n      if [ \"$COMP_CWORD\" -eq 2 ]; then "
                         f"COMPREPLY=( $(compgen -W '{_quote(sorted(actions))}' -- \"$cur\") ); return; fi\n"
                         f"      case \"${{COMP_WORDS[2]}}\" in")
            for act, asub in sorted(actions.items()):
                aopts, achoices = _options(asub)
                cases.append(f"        {act}) words='{_quote(aopts)}';;")
                for opt, values in achoices.items():
                    value_cases.append(f"    {name}:{opt}) words='{_quote(values)}';;")
            cases.append("      esac;;")
        else:
            positional_choices = [str(c) for a in sub._actions if not a.option_strings and a.choices
                                  for c in a.choices]
            if positional_choices:  # `trajrec completion SHELL`: the values, not file names
                cases.append(f"    {name}) COMPREPLY=( $(compgen -W '{_quote(opts + positional_choices)}' -- "
                             f"\"$cur\") ); return;;")
            else:
                cases.append(f"    {name}) words='{_quote(opts)}';;")
        for opt, values in choices.items():
            value_cases.append(f"    {name}:{opt}) words='{_quote(values)}';;")
    top = ["--help", "--version", *sorted(commands)]
    return f"""# bash completion for trajrec (made by `trajrec completion bash`)
_trajrec() {{
  local cur="${{COMP_WORDS[COMP_CWORD]}}" prev="${{COMP_WORDS[COMP_CWORD-1]}}" words=""
  if [ "$COMP_CWORD" -eq 1 ]; then
    COMPREPLY=( $(compgen -W '{_quote(top)}' -- "$cur") ); return
  fi
  case "${{COMP_WORDS[1]}}:$prev" in
{chr(10).join(value_cases)}
    *) ;;
  esac
  if [ -n "$words" ]; then COMPREPLY=( $(compgen -W "$words" -- "$cur") ); return; fi
  case "${{COMP_WORDS[1]}}" in
{chr(10).join(cases)}
  esac
  if [[ "$cur" == -* ]]; then
    COMPREPLY=( $(compgen -W "$words" -- "$cur") )
  else
    COMPREPLY=( $(compgen -f -- "$cur") )
  fi
}}
complete -o filenames -o bashdefault -F _trajrec trajrec
"""


def run(args: argparse.Namespace) -> int:
    from trajrec.cli import build_parser

    script = bash_script(build_parser())
    if args.shell == "zsh":
        # zsh runs bash completion functions through bashcompinit: one script, the same behavior.
        script = ("# zsh completion for trajrec (made by `trajrec completion zsh`)\n"
                  "autoload -U +X compinit && compinit\nautoload -U +X bashcompinit && bashcompinit\n" + script)
    print(script, end="")
    return 0
