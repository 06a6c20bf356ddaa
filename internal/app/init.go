package app

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/mod/sumdb/note"

	"github.com/deputy-iam/deputy/internal/change"
)

// KeyName is the name of the audit log's signing key: the origin line its checkpoints carry.
const KeyName = "deputy-audit"

// EnsureSigningKey creates the audit signing key at path (mode 0600) and its public half at
// path with ".pub" in place of its extension, unless the key exists. It returns the public key.
// The key lives outside the database on purpose: whoever can rewrite the database must not also
// be able to re-sign its history.
func EnsureSigningKey(path string) (string, error) {
	pub := strings.TrimSuffix(path, filepath.Ext(path)) + ".pub"
	if b, err := os.ReadFile(pub); err == nil {
		if _, err := os.Stat(path); err == nil {
			return strings.TrimSpace(string(b)), nil
		}
	}
	if _, err := os.Stat(path); err == nil {
		return "", fmt.Errorf("signing key %s exists without its public key %s; restore it or move both away", path, pub)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("signing key: %w", err)
	}
	skey, vkey, err := note.GenerateKey(rand.Reader, KeyName)
	if err != nil {
		return "", fmt.Errorf("generate signing key: %w", err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return "", fmt.Errorf("signing key: %w", err)
	}
	if _, err := f.WriteString(skey + "\n"); err != nil {
		f.Close()
		return "", fmt.Errorf("write signing key: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return "", fmt.Errorf("write signing key: %w", err)
	}
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("write signing key: %w", err)
	}
	if err := os.WriteFile(pub, []byte(vkey+"\n"), 0o644); err != nil {
		return "", fmt.Errorf("write public key: %w", err)
	}
	return vkey, nil
}

// Init creates what a new installation needs: the data directory, the audit signing key, and
// in the database the root OU and the first tier-0 admin with an API token. It fails with
// change.ErrInitialized on an installation that already has them.
func (a *App) Init(ctx context.Context, admin string) (change.Bootstrapped, error) {
	if err := os.MkdirAll(a.Config.DataDir, 0o700); err != nil {
		return change.Bootstrapped{}, fmt.Errorf("init: %w", err)
	}
	if _, err := EnsureSigningKey(a.Config.SigningKey); err != nil {
		return change.Bootstrapped{}, fmt.Errorf("init: %w", err)
	}
	if a.Evidence == nil {
		if err := a.openEvidence(ctx); err != nil {
			return change.Bootstrapped{}, fmt.Errorf("init: %w", err)
		}
	}
	b, err := a.Pipeline.Bootstrap(ctx, change.Meta{Transport: "cli"}, admin)
	if err != nil {
		return b, err
	}
	// The authorizer learns of the first admin now, not at the first change after it: reads
	// that ask it directly (is this caller a tier-0 admin?) must see them at once.
	if err := a.Pipeline.CatchUp(ctx); err != nil {
		return b, fmt.Errorf("init: %w", err)
	}
	return b, nil
}
