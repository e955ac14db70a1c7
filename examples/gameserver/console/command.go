package console

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// CommandUsage describes RunCommand's subcommands.
const CommandUsage = `operator subcommands:
  add    -name NAME -role viewer|operator   create an operator (password from stdin)
  passwd -name NAME                         set a new password (from stdin); ends their sessions
  role   -name NAME -role viewer|operator   change a role; ends their sessions
  list                                      list the operators
The password is the first line of standard input (at least 12 bytes), so
it stays out of the shell history and the process list:
  printf '%s\n' "$PASSWORD" | gameserver operator add -name alice -role operator`

// RunCommand runs an operator subcommand (args, such as ["add", "-name",
// "alice", "-role", "operator"]) on store, reading a password from in and
// writing to out.
func RunCommand(ctx context.Context, store *Store, args []string, in io.Reader, out io.Writer) error {
	if len(args) == 0 {
		return errors.New(CommandUsage)
	}
	fs := flag.NewFlagSet("operator "+args[0], flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	name := fs.String("name", "", "operator name")
	role := fs.String("role", "", "viewer or operator")
	if err := fs.Parse(args[1:]); err != nil {
		return fmt.Errorf("%v\n%s", err, CommandUsage)
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q\n%s", fs.Args(), CommandUsage)
	}
	password := func() (string, error) {
		line, err := bufio.NewReader(in).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", err
		}
		return strings.TrimRight(line, "\r\n"), nil
	}
	switch args[0] {
	case "add":
		pw, err := password()
		if err != nil {
			return err
		}
		if err := store.AddOperator(ctx, *name, *role, pw); err != nil {
			return err
		}
		fmt.Fprintf(out, "operator %s (%s) created\n", *name, *role)
	case "passwd":
		pw, err := password()
		if err != nil {
			return err
		}
		if err := store.SetPassword(ctx, *name, pw); err != nil {
			return err
		}
		fmt.Fprintf(out, "password of %s changed\n", *name)
	case "role":
		if err := store.SetRole(ctx, *name, *role); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s is now a %s\n", *name, *role)
	case "list":
		ops, err := store.Operators(ctx)
		if err != nil {
			return err
		}
		for _, o := range ops {
			fmt.Fprintf(out, "%s\t%s\t%s\n", o.Name, o.Role, o.CreatedAt.UTC().Format("2006-01-02 15:04:05 UTC"))
		}
	default:
		return fmt.Errorf("unknown operator subcommand %q\n%s", args[0], CommandUsage)
	}
	return nil
}
