package cli

import (
	"fmt"

	"github.com/urfave/cli/v2"
)

// The scripts ask the binary itself for the words that fit (urfave's hidden
// --generate-bash-completion), so they follow every command and flag without regeneration.
const bashCompletion = `# bash completion for outpost: outpost completion bash > /etc/bash_completion.d/outpost
_outpost_complete() {
	local cur words
	cur="${COMP_WORDS[COMP_CWORD]}"
	if [[ "$cur" == -* ]]; then
		words=$("${COMP_WORDS[@]:0:COMP_CWORD}" "$cur" --generate-bash-completion 2>/dev/null)
	else
		words=$("${COMP_WORDS[@]:0:COMP_CWORD}" --generate-bash-completion 2>/dev/null)
	fi
	COMPREPLY=($(compgen -W "$words" -- "$cur"))
}
complete -o bashdefault -o default -F _outpost_complete outpost
`

const zshCompletion = `#compdef outpost
# zsh completion for outpost: outpost completion zsh > "${fpath[1]}/_outpost"
_outpost() {
	local cur=${words[CURRENT]}
	local -a prefix candidates
	prefix=(${words[1,CURRENT-1]})
	if [[ $cur == -* ]]; then
		candidates=(${(f)"$(${prefix[@]} $cur --generate-bash-completion 2>/dev/null)"})
	else
		candidates=(${(f)"$(${prefix[@]} --generate-bash-completion 2>/dev/null)"})
	fi
	if (( ${#candidates} )); then
		compadd -a candidates
	else
		_files
	fi
}
compdef _outpost outpost
`

// completionCommand prints a shell's completion script (k3s: `k3s completion bash`).
func completionCommand() *cli.Command {
	return &cli.Command{
		Name:      "completion",
		Usage:     "print the shell completion script for bash or zsh",
		ArgsUsage: "bash|zsh",
		Action: func(c *cli.Context) error {
			switch c.Args().First() {
			case "bash":
				_, err := fmt.Fprint(c.App.Writer, bashCompletion)
				return err
			case "zsh":
				_, err := fmt.Fprint(c.App.Writer, zshCompletion)
				return err
			}
			return UsageError{fmt.Errorf("outpost completion takes bash or zsh, as in: outpost completion bash > /etc/bash_completion.d/outpost")}
		},
	}
}
