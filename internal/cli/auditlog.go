package cli

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/deputy-iam/deputy/internal/app"
	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/config"
)

// The evidence verbs: checkpoint, export and prove ask the server; verify and verify-proof
// work offline, from the database or an export, with the public key.

// stream sends a GET and returns the body of a 200 answer for the caller to read and close.
func (c *client) stream(ctx context.Context, path string, v url.Values) (io.ReadCloser, error) {
	req, err := c.request(ctx, "GET", path, v, nil)
	if err != nil {
		return nil, err
	}
	c.http.Timeout = 0 // a stream takes as long as it takes; ctx bounds it
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("cannot reach %s: %w", c.base, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		data, _ := readAllLimited(resp.Body)
		return nil, responseError(resp.StatusCode, data)
	}
	return resp.Body, nil
}

func (e *env) auditCheckpointCommand(f *clientFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "checkpoint",
		Short: "Sign a checkpoint of the audit log now and print it (needs audit.read)",
		Long: `Ask the server to sign a checkpoint covering every event logged so far, and print the
signed note (origin, size, root hash, signature). Keep it somewhere the server cannot write:
'deputy audit verify --checkpoint FILE' later proves the log still has this history.`,
		Example: "  deputy audit checkpoint >> ~/deputy-witness/checkpoints",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var cp struct {
				Origin string `json:"origin"`
				Size   uint64 `json:"size"`
				Root   []byte `json:"root"`
				Signed string `json:"signed"`
			}
			if err := c.call(cmd.Context(), "POST", "/api/v1/audit/checkpoint", nil, nil, &cp); err != nil {
				return err
			}
			if c.output == "json" {
				return json.NewEncoder(e.stdout).Encode(cp)
			}
			fmt.Fprintln(e.stdout, cp.Signed)
			return nil
		},
	}
}

func (e *env) auditExportCommand(f *clientFlags) *cobra.Command {
	var (
		format, since, hostname string
		from                    int64
	)
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write the audit log to stdout as JSON lines, CEF or RFC 5424 syslog (needs audit.read)",
		Long: `Write every event, oldest first, one per line. --format jsonl (the default) writes the
canonical encodings the log hashes: from event 0 it is a complete copy that
'deputy audit verify --export' checks offline. cef (ArcSight Common Event Format) and rfc5424
(syslog, facility authpriv, the canonical encoding as the message) are for SIEMs.`,
		Example: "  deputy audit export > audit.jsonl\n  deputy audit export --format cef --since 2026-11-01T00:00:00Z",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if !slices.Contains(audit.Formats, format) {
				return fmt.Errorf("--format %q: want %s", format, strings.Join(audit.Formats, ", "))
			}
			if since != "" {
				if _, err := time.Parse(time.RFC3339, since); err != nil {
					return fmt.Errorf("--since %q: want an RFC 3339 time such as 2026-11-01T00:00:00Z", since)
				}
			}
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			v := url.Values{}
			if from > 0 {
				v.Set("from", strconv.FormatInt(from, 10))
			}
			if since != "" {
				v.Set("since", since)
			}
			body, err := c.stream(cmd.Context(), "/api/v1/audit/export", v)
			if err != nil {
				return err
			}
			defer body.Close()
			_, err = writeExport(e.stdout, body, format, hostname)
			return err
		},
	}
	cmd.Flags().StringVar(&format, "format", audit.FormatJSONL, "jsonl, cef or rfc5424")
	cmd.Flags().StringVar(&since, "since", "", "only events at or after this RFC 3339 time")
	cmd.Flags().Int64Var(&from, "from", 0, "start at this event index")
	cmd.Flags().StringVar(&hostname, "hostname", "", "the HOSTNAME of rfc5424 messages (default this machine's name)")
	return cmd
}

// writeExport copies an export stream to w in format (jsonl, cef, rfc5424, or line: one
// readable line per event) and returns how many events it wrote.
func writeExport(w io.Writer, r io.Reader, format, hostname string) (int64, error) {
	if hostname == "" {
		hostname, _ = os.Hostname()
	}
	br := bufio.NewReaderSize(r, 1<<20)
	bw := bufio.NewWriterSize(w, 1<<16)
	defer bw.Flush()
	var n int64
	for {
		line, err := br.ReadBytes('\n')
		if line = bytes.TrimSuffix(line, []byte("\n")); len(line) > 0 {
			if format == audit.FormatJSONL {
				bw.Write(line)
			} else {
				ev, derr := audit.Decode(line)
				if derr != nil {
					return n, fmt.Errorf("export line %d: %s", n+1, strings.TrimSpace(string(line)))
				}
				switch format {
				case audit.FormatCEF:
					bw.WriteString(audit.CEF(&ev, Version))
				case audit.FormatRFC5424:
					bw.WriteString(audit.RFC5424(&ev, line, hostname))
				default:
					reason := ""
					if ev.Reason != "" {
						reason = " (" + ev.Reason + ")"
					}
					fmt.Fprintf(bw, "%d %s %s %s %s %s%s", ev.Index, ev.Time.Format(time.RFC3339), ev.Actor.Name, ev.Action,
						ev.Target.Name, ev.Outcome, reason)
				}
			}
			bw.WriteByte('\n')
			n++
		}
		if errors.Is(err, io.EOF) {
			return n, nil
		}
		if err != nil {
			return n, fmt.Errorf("read the export: %w", err)
		}
	}
}

func (e *env) auditProveCommand(f *clientFlags) *cobra.Command {
	var index, size int64
	cmd := &cobra.Command{
		Use:   "prove --index N",
		Short: "Print a proof that event N is in the audit log, checkable offline (needs audit.read)",
		Long: `Print, as JSON, the event's canonical encoding, its RFC 6962 inclusion proof and the
signed checkpoint it leads to. 'deputy audit verify-proof' checks it with the public key alone:
hand both to whoever must be convinced.`,
		Example: "  deputy audit prove --index 1234 > event-1234.proof.json",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if index < 0 || size < 0 {
				return fmt.Errorf("--index and --size must not be negative")
			}
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			v := url.Values{"index": {strconv.FormatInt(index, 10)}}
			if size > 0 {
				v.Set("size", strconv.FormatInt(size, 10))
			}
			var p json.RawMessage
			if err := c.call(cmd.Context(), "GET", "/api/v1/audit/proof/inclusion", v, nil, &p); err != nil {
				return err
			}
			_, err = fmt.Fprintln(e.stdout, string(p))
			return err
		},
	}
	cmd.Flags().Int64Var(&index, "index", -1, "the event's index (required)")
	cmd.Flags().Int64Var(&size, "size", 0, "prove against this tree size (default: the latest checkpoint's; the proof then carries it)")
	_ = cmd.MarkFlagRequired("index")
	return cmd
}

// readKey reads a public key: a file holding it, or the key itself (name+hash+base64).
func readKey(arg string) (note.Verifiers, error) {
	text := arg
	if b, err := os.ReadFile(arg); err == nil {
		text = strings.TrimSpace(string(b))
	} else if !strings.Contains(arg, "+") {
		return nil, fmt.Errorf("--key %s: %w", arg, err)
	}
	v, err := note.NewVerifier(text)
	if err != nil {
		return nil, fmt.Errorf("--key %s: not a public key (the .pub file deputy init wrote): %w", arg, err)
	}
	return note.VerifierList(v), nil
}

func (e *env) auditVerifyProofCommand() *cobra.Command {
	var key string
	cmd := &cobra.Command{
		Use:     "verify-proof FILE",
		Short:   "Check a proof printed by 'deputy audit prove', offline, with the public key",
		Example: "  deputy audit verify-proof event-1234.proof.json --key audit-signing.pub",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if key == "" {
				return fmt.Errorf("--key is required: the audit signing key's public half (audit-signing.pub)")
			}
			known, err := readKey(key)
			if err != nil {
				return err
			}
			data, err := readFileOrStdin(args[0], e.stdin)
			if err != nil {
				return err
			}
			var p audit.InclusionProof
			if err := json.Unmarshal(data, &p); err != nil {
				return fmt.Errorf("%s: not a proof: %w", args[0], err)
			}
			if err := p.Verify(known); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "event %d is in the audit log of %d events (root %s), as a checkpoint signed by the key says\n",
				p.Index, p.Size, base64.StdEncoding.EncodeToString(p.Root))
			return nil
		},
	}
	cmd.Flags().StringVar(&key, "key", "", "the public key, or the file holding it (audit-signing.pub)")
	return cmd
}

func readFileOrStdin(name string, stdin io.Reader) ([]byte, error) {
	if name == "-" {
		return io.ReadAll(stdin)
	}
	return os.ReadFile(name)
}

func (e *env) auditVerifyCommand() *cobra.Command {
	var (
		key, exportFile string
		checkpoints     []string
	)
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the audit log offline: recompute the Merkle tree and check it against signed checkpoints",
		Long: `Recompute the audit log's Merkle tree from its events and check it against every
signed checkpoint: those in the database and those in the --checkpoint files (a witness's
copies; by default also the server's checkpoint file). With --data or --database-url it reads
the database directly (the server may be running) and also compares the leaf hashes and tree
nodes stored beside the events; with --export it reads a 'deputy audit export' file.

It prints the verified size and root and exits 0, or names the first event that does not match
and exits 1. When the evidence only bounds it (a checkpoint's root over a stretch whose stored
hashes were rewritten too), it names the range between the last checkpoint that matches and
the first that does not: checkpoints signed more often narrow it.`,
		Example: "  deputy audit verify --data ./deputy-data\n" +
			"  deputy audit verify --export audit.jsonl --key audit-signing.pub --checkpoint witness/checkpoints",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := config.Resolve(cmd.Flags(), e.getenv)
			if err != nil {
				return err
			}
			if key == "" && exportFile == "" {
				key = strings.TrimSuffix(cfg.SigningKey, filepath.Ext(cfg.SigningKey)) + ".pub"
			}
			if key == "" {
				return fmt.Errorf("--key is required with --export: the audit signing key's public half (audit-signing.pub)")
			}
			known, err := readKey(key)
			if err != nil {
				return err
			}
			var notes [][]byte
			files := checkpoints
			if len(files) == 0 && exportFile == "" {
				if _, err := os.Stat(cfg.CheckpointFile); err == nil {
					files = []string{cfg.CheckpointFile}
				}
			}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					return fmt.Errorf("--checkpoint: %w", err)
				}
				notes = append(notes, audit.SplitCheckpoints(b)...)
			}
			from := strings.Join(files, ", ")
			var got audit.Verified
			if exportFile != "" {
				cps, sigErr := audit.OpenCheckpoints(notes, known, from)
				r, err := os.Open(exportFile)
				if err != nil {
					return err
				}
				defer r.Close()
				got, err = audit.VerifyExport(r, cps)
				if err = errors.Join(err, sigErr); err != nil {
					return err
				}
			} else if got, err = app.VerifyDatabase(cmd.Context(), cfg, known, notes, from); err != nil {
				return err
			}
			fmt.Fprintf(e.stdout, "verified %d events: root %s\n", got.Size, got.RootBase64())
			switch {
			case got.Checkpoints == 0:
				fmt.Fprintln(e.stdout, "no signed checkpoint was given or stored: the log is consistent, but nothing vouches for its history")
			case got.Covered < got.Size:
				fmt.Fprintf(e.stdout, "checkpoints matched: %d; the latest covers %d events: the %d after it are not yet under a signed checkpoint\n",
					got.Checkpoints, got.Covered, got.Size-got.Covered)
			default:
				fmt.Fprintf(e.stdout, "checkpoints matched: %d; the latest covers every event\n", got.Checkpoints)
			}
			return nil
		},
	}
	config.AddFlags(cmd.Flags(), "data", "database-url", "signing-key", "checkpoint-file", "log-level", "log-format")
	cmd.Flags().StringVar(&key, "key", "", "the public key or its file (default: the .pub beside --signing-key)")
	cmd.Flags().StringVar(&exportFile, "export", "", "verify this export file (deputy audit export) instead of the database")
	cmd.Flags().StringArrayVar(&checkpoints, "checkpoint", nil, "a file of signed checkpoints to check against (repeatable)")
	return cmd
}

func (e *env) auditRevertCommand(f *clientFlags) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "revert INDEX",
		Short: "Undo an applied event: its inverse change goes through the pipeline as you",
		Long: `Undo the change event INDEX recorded: an update is set back, a move moved back, a
disable enabled, a create deleted, a membership added removed or removed restored (with its
original provenance), a grant revoked. The undo is authorized as your own change and recorded
as an event that names the one it reverts. If the object changed since, it is refused (exit 1)
naming the later events; --force (tier-0 admins) undoes it anyway.`,
		Example: "  deputy audit revert 812 --justification \"wrong title, INC-4411\"",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			idx, err := strconv.ParseInt(args[0], 10, 64)
			if err != nil || idx < 0 {
				return fmt.Errorf("INDEX %q: want an event index", args[0])
			}
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var v url.Values
			if force {
				v = url.Values{"force": {"true"}}
			}
			var out struct {
				Event   int64 `json:"event"`
				Reverts int64 `json:"reverts"`
				Action  string
				Target  struct{ Kind, Name, ID string }
			}
			if err := c.call(cmd.Context(), "POST", "/api/v1/audit/events/"+args[0]+"/revert", v, nil, &out); err != nil {
				return err
			}
			if c.output == "json" {
				return json.NewEncoder(e.stdout).Encode(out)
			}
			fmt.Fprintf(e.stdout, "reverted event %d: %s on %s (event %d)\n", out.Reverts, out.Action, out.Target.Name, out.Event)
			return nil
		},
	}
	cmd.Flags().BoolVar(&force, "force", false, "undo even though the object changed since (tier-0 admins)")
	return cmd
}

func (e *env) auditTailCommand(f *clientFlags) *cobra.Command {
	var (
		follow bool
		n      int64
		format string
	)
	cmd := &cobra.Command{
		Use:     "tail [-f]",
		Short:   "Print the newest audit events, and with -f the ones that follow as they are logged (needs audit.read)",
		Example: "  deputy audit tail -n 20\n  deputy audit tail -f --format rfc5424 | logger --server siem.example.com --tcp --octet-count",
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if format != "line" && !slices.Contains(audit.Formats, format) {
				return fmt.Errorf("--format %q: want line, %s", format, strings.Join(audit.Formats, ", "))
			}
			if n < 0 {
				return fmt.Errorf("-n must not be negative")
			}
			c, err := e.newClient(f)
			if err != nil {
				return err
			}
			var newest struct {
				Items []struct{ Index int64 } `json:"items"`
			}
			if err := c.call(cmd.Context(), "GET", "/api/v1/audit/events", url.Values{"limit": {"1"}}, nil, &newest); err != nil {
				return err
			}
			next := int64(0)
			if len(newest.Items) > 0 {
				next = max(0, newest.Items[0].Index+1-n)
			}
			for {
				read, err := c.tailFrom(cmd.Context(), e.stdout, next, format)
				if err != nil {
					return err
				}
				next += read
				if !follow {
					return nil
				}
				select {
				case <-cmd.Context().Done():
					return nil
				case <-time.After(time.Second):
				}
			}
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing events as they are logged, until interrupted")
	cmd.Flags().Int64VarP(&n, "lines", "n", 10, "how many of the newest events to print first")
	cmd.Flags().StringVar(&format, "format", "line", "line (one readable line each), jsonl, cef or rfc5424")
	return cmd
}

// tailFrom prints the events from index next on and returns how many it printed.
func (c *client) tailFrom(ctx context.Context, w io.Writer, next int64, format string) (int64, error) {
	body, err := c.stream(ctx, "/api/v1/audit/export", url.Values{"from": {strconv.FormatInt(next, 10)}})
	if err != nil {
		return 0, err
	}
	defer body.Close()
	return writeExport(w, body, format, "")
}
