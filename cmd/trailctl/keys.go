package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/trailkeep/trailkeep/pkg/chain"
)

func newKeysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Create and inspect checkpoint signing keys"}
	var dir string
	gen := &cobra.Command{
		Use:   "generate NAME",
		Short: "Create an Ed25519 signing key; writes NAME.key (private, 0600) and NAME.pub",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			skey, vkey, err := chain.GenerateKey(args[0])
			if err != nil {
				return err
			}
			priv := filepath.Join(dir, args[0]+".key")
			if _, err := os.Stat(priv); err == nil {
				return fmt.Errorf("%s exists; refusing to overwrite a signing key", priv)
			}
			if err := os.WriteFile(priv, []byte(skey+"\n"), 0o600); err != nil {
				return err
			}
			if err := os.WriteFile(filepath.Join(dir, args[0]+".pub"), []byte(vkey+"\n"), 0o644); err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), vkey)
			return nil
		},
	}
	gen.Flags().StringVar(&dir, "dir", ".", "directory for the key files")
	show := &cobra.Command{
		Use:   "show SIGNER_KEY_FILE",
		Short: "Print the public verifier key (name+hash+key) of a signing key",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			skey, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			vkey, err := chain.VerifierKey(string(skey))
			if err != nil {
				return err
			}
			parts := strings.SplitN(vkey, "+", 3)
			if len(parts) != 3 {
				return fmt.Errorf("unexpected verifier key form %q", vkey)
			}
			// The key id is the hash that signature lines carry: a checkpoint's
			// signer is identified by name + id.
			fmt.Fprintf(cmd.OutOrStdout(), "%s\nname: %s\nkey id: %s\n", vkey, parts[0], parts[1])
			return nil
		},
	}
	cmd.AddCommand(gen, show)
	return cmd
}

func readSigner(path string) (string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	return strings.TrimSpace(string(b)), nil
}

// loadVerifiers builds the trusted key list from key files.
func loadVerifiers(paths []string) (note.Verifiers, error) {
	keys, err := readVerifierKeys(paths)
	if err != nil {
		return nil, err
	}
	return chain.NewVerifiers(keys...)
}

// readVerifierKeys loads public keys: each argument is a file holding one or
// more verifier keys, one per line (old keys stay listed after rotation).
func readVerifierKeys(paths []string) ([]string, error) {
	if len(paths) == 0 {
		return nil, &exitError{code: 2, err: fmt.Errorf("at least one --verifier-key file is required")}
	}
	var keys []string
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("verifier key: %w", err)
		}
		for _, l := range strings.Split(string(b), "\n") {
			if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
				keys = append(keys, l)
			}
		}
	}
	return keys, nil
}
