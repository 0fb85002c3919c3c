// Package repo locates the repository root (the directory holding go.mod) from a
// test's working directory, so test helpers can run the project's scripts and find
// the shared fixtures beside the checkout.
package repo

import (
	"fmt"
	"os"
	"path/filepath"
)

// Root returns the nearest directory at or above the working directory that holds
// go.mod.
func Root() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for d := wd; ; d = filepath.Dir(d) {
		if _, err := os.Stat(filepath.Join(d, "go.mod")); err == nil {
			return d, nil
		}
		if d == filepath.Dir(d) {
			return "", fmt.Errorf("no go.mod at or above %s", wd)
		}
	}
}

// Script returns the path of scripts/<name> in the repository.
func Script(name string) (string, error) {
	root, err := Root()
	if err != nil {
		return "", err
	}
	p := filepath.Join(root, "scripts", name)
	if _, err := os.Stat(p); err != nil {
		return "", fmt.Errorf("scripts/%s: %w", name, err)
	}
	return p, nil
}
