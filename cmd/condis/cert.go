package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/condis-project/condis/pki"
)

// certCmd is `condis cert`: the cluster CA and node certificates (package
// pki) on disk.
func certCmd() *cobra.Command {
	c := &cobra.Command{
		Use:   "cert",
		Short: "Make the cluster certificate authority and node certificates",
		Long: `Nodes authenticate each other with mutual TLS: every node has a certificate,
signed by the cluster certificate authority (CA), whose DNS name is the node's
name. A cluster directory holds:

  ca.pem, ca.key        the CA (condis cert init; keep ca.key off the nodes)
  NAME.pem, NAME.key    node NAME's certificate and key (condis cert issue)

A node needs ca.pem, NAME.pem and NAME.key. Keys are ECDSA P-256 in PKCS #8 PEM
files of mode 0600. Existing files are never overwritten without --force.`,
		Example: `  condis cert init --dir cluster
  condis cert issue --dir cluster alpha
  condis cert issue --dir cluster beta`,
		// Without a subcommand: help; with an unknown one: an error (cobra
		// would print the help and succeed).
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) > 0 {
				return fmt.Errorf("cert: unknown command %q (want init or issue; see condis cert --help)", args[0])
			}
			return cmd.Help()
		},
	}
	// Flag errors name the subcommand, like every other error of ours;
	// the subcommands inherit this.
	c.SetFlagErrorFunc(func(cmd *cobra.Command, err error) error {
		return fmt.Errorf("%s: %w (see %s --help)", subcommandPath(cmd), err, cmd.CommandPath())
	})
	c.AddCommand(certInitCmd(), certIssueCmd())
	return c
}

// subcommandPath is cmd's path without the root: "cert issue".
func subcommandPath(cmd *cobra.Command) string {
	p := cmd.CommandPath()
	if cmd.Root() != nil {
		p = strings.TrimPrefix(p, cmd.Root().Name()+" ")
	}
	return p
}

func certInitCmd() *cobra.Command {
	var (
		dir   string
		force bool
	)
	c := &cobra.Command{
		Use:   "init --dir DIR",
		Short: "Make a cluster CA: DIR/ca.pem and DIR/ca.key",
		Long: `init makes a new cluster certificate authority and writes its certificate to
DIR/ca.pem (mode 0644) and its private key to DIR/ca.key (mode 0600), creating
DIR (mode 0700) if needed. Copy ca.pem to every node; keep ca.key where you
issue certificates, not on the nodes.

It refuses to overwrite existing files. With --force it replaces them; every
node certificate signed by the old CA must then be issued again.`,
		Example: "  condis cert init --dir cluster",
		Args:    noArgs("cert init"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return certInit(cmd.OutOrStdout(), dir, force)
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "the cluster directory (required; created with mode 0700 if missing)")
	c.Flags().BoolVar(&force, "force", false, "replace an existing ca.pem and ca.key")
	return c
}

func certIssueCmd() *cobra.Command {
	var (
		dir   string
		force bool
	)
	c := &cobra.Command{
		Use:   "issue --dir DIR NAME",
		Short: "Issue node NAME's certificate: DIR/NAME.pem and DIR/NAME.key",
		Long: `issue makes a key and a certificate for node NAME, signed by the CA in DIR
(made by condis cert init), and writes them to DIR/NAME.pem (mode 0644) and
DIR/NAME.key (mode 0600). NAME is the node's identity: a DNS name in lower case
(letters, digits, '-' and '.'), the name in its configuration and the name its
peers list it under.

It refuses to overwrite existing files; --force replaces them.`,
		Example: "  condis cert issue --dir cluster alpha",
		Args: func(cmd *cobra.Command, args []string) error {
			switch len(args) {
			case 1:
				return nil
			case 0:
				return errors.New("cert issue: want a node name: condis cert issue --dir DIR NAME")
			default:
				return fmt.Errorf("cert issue: want one node name, got %d: %s", len(args), strings.Join(args, " "))
			}
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			return certIssue(cmd.OutOrStdout(), dir, args[0], force)
		},
	}
	c.Flags().StringVar(&dir, "dir", "", "the cluster directory holding ca.pem and ca.key (required)")
	c.Flags().BoolVar(&force, "force", false, "replace an existing NAME.pem and NAME.key")
	return c
}

// noArgs is cobra.NoArgs with our error style.
func noArgs(what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return fmt.Errorf("%s: unexpected argument %q (see %s --help)", what, args[0], cmd.CommandPath())
		}
		return nil
	}
}

func certInit(w io.Writer, dir string, force bool) error {
	const op = "cert init"
	if dir == "" {
		return errors.New(op + ": --dir DIR is required (the cluster directory to create)")
	}
	certPath := filepath.Join(dir, pki.CACertFile)
	keyPath := filepath.Join(dir, pki.CAKeyFile)
	var (
		ca       *pki.CA
		replaced bool
		err      error
	)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if !force {
		if err := refuseExisting(op, "; every node certificate must then be issued again", certPath, keyPath); err != nil {
			return err
		}
		if ca, err = pki.InitCA(dir); err != nil {
			return pkiError(op, err)
		}
	} else {
		replaced = exists(certPath) || exists(keyPath)
		if ca, err = pki.ReplaceCA(dir); err != nil {
			return pkiError(op, err)
		}
	}
	verb := "made"
	if replaced {
		verb = "replaced the"
	}
	fmt.Fprintf(w, "%s cluster CA %q, valid until %s\n", verb, ca.Cert.Subject.CommonName, ca.Cert.NotAfter.UTC().Format("2006-01-02"))
	fmt.Fprintf(w, "  %s  certificate: copy it to every node\n", certPath)
	fmt.Fprintf(w, "  %s  private key (mode 0600): keep it off the nodes\n", keyPath)
	if replaced {
		if old := nodeCerts(dir); len(old) > 0 {
			fmt.Fprintf(w, "the node certificates in %s were signed by the old CA; issue them again with --force: %s\n", dir, strings.Join(old, " "))
		}
	}
	fmt.Fprintf(w, "next: condis cert issue --dir %s NAME\n", shellQuote(dir))
	return nil
}

func certIssue(w io.Writer, dir, name string, force bool) error {
	const op = "cert issue"
	if dir == "" {
		return errors.New(op + ": --dir DIR is required (the cluster directory made by condis cert init)")
	}
	if err := pki.ValidName(name); err != nil {
		return pkiError(op, err)
	}
	if name+".pem" == pki.CACertFile {
		return fmt.Errorf("%s: %q cannot be a node name: %s and %s are the CA's files", op, name, pki.CACertFile, pki.CAKeyFile)
	}
	// Say plainly when there is no CA, before anything else.
	for _, f := range []string{pki.CAKeyFile, pki.CACertFile} {
		p := filepath.Join(dir, f)
		if _, err := os.Stat(p); errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("%s: %s: no such file (run condis cert init --dir %s first)", op, p, shellQuote(dir))
		}
	}
	certPath := filepath.Join(dir, name+".pem")
	keyPath := filepath.Join(dir, name+".key")
	var (
		id       *pki.Identity
		replaced bool
		err      error
	)
	if !force {
		if err := refuseExisting(op, "", certPath, keyPath); err != nil {
			return err
		}
		if id, err = pki.Issue(dir, name); err != nil {
			return pkiError(op, err)
		}
	} else {
		replaced = exists(certPath) || exists(keyPath)
		if id, err = pki.Reissue(dir, name); err != nil {
			return pkiError(op, err)
		}
	}
	leaf := id.Certificate.Leaf
	verb := "issued"
	if replaced {
		verb = "replaced the"
	}
	fmt.Fprintf(w, "%s certificate of node %q, signed by %q, valid until %s\n", verb, name, leaf.Issuer.CommonName, leaf.NotAfter.UTC().Format("2006-01-02"))
	fmt.Fprintf(w, "  %s  certificate\n", certPath)
	fmt.Fprintf(w, "  %s  private key (mode 0600)\n", keyPath)
	fmt.Fprintf(w, "node %s needs %s, %s and %s\n", name, filepath.Join(dir, pki.CACertFile), certPath, keyPath)
	return nil
}

// refuseExisting fails, naming the first of paths that exists.
func refuseExisting(op, more string, paths ...string) error {
	for _, p := range paths {
		_, err := os.Lstat(p)
		switch {
		case err == nil:
			return fmt.Errorf("%s: %s already exists (use --force to replace it%s)", op, p, more)
		case !errors.Is(err, fs.ErrNotExist):
			return fmt.Errorf("%s: %w", op, err)
		}
	}
	return nil
}

func exists(path string) bool {
	_, err := os.Lstat(path)
	return err == nil
}

// pkiError is a pki error as one line of ours: "cert issue: <what pki said>".
func pkiError(op string, err error) error {
	return fmt.Errorf("%s: %s", op, strings.TrimPrefix(err.Error(), "pki: "))
}

// nodeCerts lists the node certificates (NAME.pem other than ca.pem) in dir.
func nodeCerts(dir string) []string {
	m, _ := filepath.Glob(filepath.Join(dir, "*.pem"))
	var out []string
	for _, p := range m {
		if filepath.Base(p) != pki.CACertFile {
			out = append(out, filepath.Base(p))
		}
	}
	return out
}

// shellQuote quotes s for a POSIX shell if it needs it, so that the
// commands we suggest can be pasted.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@+,=") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
