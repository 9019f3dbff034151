// `sluice completion bash|zsh`: shell completion generated from the command tree
// itself, so it never falls out of step with the commands and their flags.
import type { Command } from 'commander';

interface Node { path: string[]; flags: string[]; subcommands: string[] }

function walk(cmd: Command, path: string[], out: Node[]): void {
  const subs = cmd.commands.filter((c) => c.name() !== 'help');
  out.push({
    path,
    flags: cmd.options.flatMap((o) => [o.long, o.short].filter((f): f is string => !!f)).concat('--help'),
    subcommands: subs.map((c) => c.name()),
  });
  for (const c of subs) walk(c, [...path, c.name()], out);
}

/** A bash completion function: completes subcommands, then the flags of the command typed so far. */
export function bashCompletion(program: Command): string {
  const nodes: Node[] = [];
  walk(program, [], nodes);
  const cases = nodes.map((n) => `    "${n.path.join(' ')}") words="${[...n.subcommands, ...n.flags].join(' ')}" ;;`).join('\n');
  return `# bash completion for sluice; load with: source <(sluice completion bash)
_sluice() {
  local cur path="" w words i
  cur="\${COMP_WORDS[COMP_CWORD]}"
  for ((i = 1; i < COMP_CWORD; i++)); do
    w="\${COMP_WORDS[i]}"
    [[ "$w" == -* ]] && continue
    case " $(_sluice_subs "$path") " in *" $w "*) path="\${path:+$path }$w" ;; esac
  done
  _sluice_words "$path"
  COMPREPLY=( $(compgen -W "$words" -- "$cur") )
}
_sluice_words() {
  case "$1" in
${cases}
    *) words="" ;;
  esac
}
_sluice_subs() {
  local words; _sluice_words "$1"; local out="" x
  for x in $words; do [[ "$x" == -* ]] || out="$out $x"; done
  echo "$out"
}
complete -F _sluice sluice
`;
}

export function registerCompletionCommand(program: Command): void {
  program
    .command('completion')
    .description('print a shell completion script (bash; zsh via bashcompinit)')
    .argument('[shell]', 'bash or zsh', 'bash')
    .addHelpText('after', '\nExamples:\n  source <(sluice completion bash)\n  sluice completion bash > /etc/bash_completion.d/sluice\n  zsh: autoload -U +X bashcompinit && bashcompinit && source <(sluice completion zsh)')
    .action((shell: string) => {
      if (shell !== 'bash' && shell !== 'zsh') throw new Error(`completion ${shell}: supported shells are bash and zsh`);
      process.stdout.write(bashCompletion(program));
    });
}
