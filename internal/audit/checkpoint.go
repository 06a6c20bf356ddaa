package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
)

// Checkpoint is a statement of the log's state: its origin (the signing key's name), how many
// events it holds and the root hash over them. Signed, in the signed-note format that Go's
// checksum database and the transparency-dev ecosystem use, it commits Deputy to that history:
// a later log whose first Size events hash to another root has been rewritten.
type Checkpoint struct {
	Origin string
	Size   uint64
	Root   []byte
}

// Text is the checkpoint's note body: origin, size and base64 root, one per line.
func (c Checkpoint) Text() string {
	return fmt.Sprintf("%s\n%d\n%s\n", c.Origin, c.Size, base64.StdEncoding.EncodeToString(c.Root))
}

// ParseCheckpoint reads a note body written by Text (extension lines after the root are allowed
// and ignored, as the checkpoint format specifies).
func ParseCheckpoint(text string) (Checkpoint, error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return Checkpoint{}, errors.New("audit: checkpoint: want origin, size and root hash lines")
	}
	size, err := strconv.ParseUint(lines[1], 10, 64)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint size %q: %w", lines[1], err)
	}
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != hasher.Size() {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint root %q: not a base64 SHA-256 hash", lines[2])
	}
	if lines[0] == "" {
		return Checkpoint{}, errors.New("audit: checkpoint: empty origin")
	}
	return Checkpoint{Origin: lines[0], Size: size, Root: root}, nil
}

// Sign returns the signed note of c.
func (c Checkpoint) Sign(s note.Signer) ([]byte, error) {
	b, err := note.Sign(&note.Note{Text: c.Text()}, s)
	if err != nil {
		return nil, fmt.Errorf("audit: sign checkpoint %d: %w", c.Size, err)
	}
	return b, nil
}

// OpenCheckpoint verifies a signed checkpoint against the known keys and returns it. The
// origin must be the name of the key that signed it.
func OpenCheckpoint(signed []byte, known note.Verifiers) (Checkpoint, error) {
	n, err := note.Open(signed, known)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint signature: %w", err)
	}
	c, err := ParseCheckpoint(n.Text)
	if err != nil {
		return Checkpoint{}, err
	}
	for _, s := range n.Sigs {
		if s.Name == c.Origin {
			return c, nil
		}
	}
	return Checkpoint{}, fmt.Errorf("audit: checkpoint of origin %q is not signed by that origin's key", c.Origin)
}

// SplitCheckpoints splits a checkpoint file (signed notes one after another, each followed by
// an empty line, as Deputy appends them) into its notes. A note's body has no empty line and
// its signature block none either, so an empty line after signature lines ends a note.
func SplitCheckpoints(file []byte) [][]byte {
	var out [][]byte
	var cur bytes.Buffer
	inSigs := false
	for line := range bytes.Lines(file) {
		blank := len(bytes.TrimRight(line, "\r\n")) == 0
		switch {
		case blank && cur.Len() == 0: // between notes
		case blank && inSigs:
			out = append(out, bytes.Clone(cur.Bytes()))
			cur.Reset()
			inSigs = false
		case blank:
			cur.Write(line)
			inSigs = true
		default:
			cur.Write(line)
		}
	}
	if cur.Len() > 0 {
		out = append(out, cur.Bytes())
	}
	return out
}
