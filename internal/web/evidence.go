package web

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/mod/sumdb/note"

	"github.com/deputy-iam/deputy/internal/audit"
	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/lifecycle"
)

// Evidence is what the portal reads of the audit log's evidence (audit.Evidence): the latest
// signed checkpoint, and an inclusion proof against the stored tree to check it with.
type Evidence interface {
	Latest(ctx context.Context) ([]byte, audit.Checkpoint, error)
	ProveInclusion(ctx context.Context, index, size uint64) (audit.InclusionProof, error)
}

// HR is what the portal drives of the HR lifecycle (lifecycle.Service): feed imports (a dry run
// is the plan), the day it plans for, and the record of runs.
type HR interface {
	Import(ctx context.Context, feed lifecycle.Feed, opt lifecycle.ImportOptions) (*lifecycle.Run, *lifecycle.Plan, error)
	Today() time.Time
	Runs(ctx context.Context, limit int) ([]lifecycle.Run, error)
	Residual(ctx context.Context) ([]lifecycle.Residual, error)
}

// registerEvidence adds the pages of evidence and the HR feed: an audit event's detail with its
// diff and undo, the latest checkpoint's status (on /audit, see checkpointStatus), and uploading
// an HR feed to see its plan and apply it.
func (s *Server) registerEvidence(mux *http.ServeMux) {
	s.feeds = &feedStore{m: map[string]*storedFeed{}}
	mux.HandleFunc("GET /audit/{index}", s.page(s.auditEvent))
	mux.HandleFunc("POST /audit/{index}/revert", s.page(s.revertEvent))
	mux.HandleFunc("GET /hr", s.page(s.hrPage))
	mux.HandleFunc("POST /hr/plan", limitBody(maxFeedUpload, s.page(s.hrPlan)))
	mux.HandleFunc("POST /hr/apply", s.page(s.hrApply))
	mux.HandleFunc("GET /hr/runs/{id}", s.page(s.hrRun))
	mux.HandleFunc("GET /reports/residual-access", s.page(s.residualAccess))
}

// tier0 reports whether the person holds the tier-0 admin role.
func (s *Server) tier0(me delegation.Actor) bool {
	for _, g := range s.Authz.Grants(me.ID) {
		if g.Role.Name == delegation.RoleTier0 {
			return true
		}
	}
	return false
}

// readableEvent reads the event the path names if the person may see it, by the rule of the
// API's single-event read (internal/api readableEvent and eventScope): whoever holds audit.read
// over the whole directory sees every event; anyone else their own actions (and those done on
// their behalf) and events about directory objects they may read now. Any other event is not
// found, as if it did not exist.
func (s *Server) readableEvent(c *ctx) (audit.Event, bool) {
	ctx := c.r.Context()
	idx, err := strconv.ParseInt(c.r.PathValue("index"), 10, 64)
	notFound := directory.NotFound("event", c.r.PathValue("index"))
	if err != nil || idx < 0 {
		s.fail(c, notFound)
		return audit.Event{}, false
	}
	e, err := s.Audit.Event(ctx, idx)
	if err != nil {
		s.fail(c, notFound)
		return audit.Event{}, false
	}
	if dec, err := s.Pipeline.Ask(ctx, &delegation.Question{Actor: c.me, Action: delegation.AuditRead}); err != nil {
		s.fail(c, err)
		return audit.Event{}, false
	} else if dec.Allow || delegation.NewEventScope(s.Dir, s.Authz, c.me).Visible(ctx, &e) {
		return e, true
	}
	s.fail(c, notFound)
	return audit.Event{}, false
}

// eventObject reads the directory object (user, group, service account or OU) an event is
// about, as it is now; false when the event is about something else or the object is gone.
func (s *Server) eventObject(ctx context.Context, e *audit.Event) (delegation.Object, bool) {
	if e.Target.ID == "" {
		return delegation.Object{}, false
	}
	obj, err := delegation.ReadObject(ctx, s.Dir, directory.Ref{Kind: directory.Kind(e.Target.Type), ID: e.Target.ID})
	return obj, err == nil
}

// diffRow is one attribute of an event's before/after.
type diffRow struct {
	Attr          string
	Before, After any
	Changed       bool
}

// diffRows lines up an event's before and after by attribute, in name order.
func diffRows(before, after map[string]any) []diffRow {
	keys := make([]string, 0, len(before)+len(after))
	for k := range before {
		keys = append(keys, k)
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	rows := make([]diffRow, 0, len(keys))
	for _, k := range keys {
		rows = append(rows, diffRow{Attr: k, Before: before[k], After: after[k], Changed: !reflect.DeepEqual(before[k], after[k])})
	}
	return rows
}

// objectPath is the portal page of an event's target or actor, "" when it has none.
func objectPath(kind, name string) string {
	if name == "" {
		return ""
	}
	switch directory.Kind(kind) {
	case directory.KindUser:
		return "/users/" + url.PathEscape(name)
	case directory.KindGroup:
		return "/groups/" + url.PathEscape(name)
	}
	return ""
}

// conflictView is an undo refused because its object changed after the event.
type conflictView struct {
	Detail string
	Later  []audit.Event
}

// auditEvent shows one event: who, what, on what, why and on whose authority, the change as a
// diff, and an undo when the event is an applied change the person may revert.
func (s *Server) auditEvent(c *ctx) {
	ev, ok := s.readableEvent(c)
	if !ok {
		return
	}
	s.renderEvent(c, http.StatusOK, ev, nil)
}

func (s *Server) renderEvent(c *ctx, status int, ev audit.Event, conflict *conflictView) {
	ctx := c.r.Context()
	diff := diffRows(ev.Before, ev.After)
	// Marked in words only when some rows did not change (a create or an add changes them all).
	mixed := slices.ContainsFunc(diff, func(d diffRow) bool { return !d.Changed })
	data := map[string]any{"Event": ev, "Diff": diff, "Mixed": mixed, "Conflict": conflict,
		"TargetPath": objectPath(ev.Target.Type, ev.Target.Name), "ActorPath": objectPath(ev.Actor.Type, ev.Actor.Name),
		"Tier0": s.tier0(c.me)}
	if op, err := change.Inverse(ev, false); err == nil {
		// Offered when one of the person's roles allows the opposite action on the object as it
		// is now (a tier-0 admin's also when it is gone: an OU's delete is undone by restoring
		// it). The pipeline decides when it is posted, and may send it for approval.
		if obj, ok := s.eventObject(ctx, &ev); ok {
			data["CanUndo"] = len(s.Authz.Allowed(ctx, c.me, obj, []delegation.Action{op.Action})) > 0
		} else {
			data["CanUndo"] = data["Tier0"]
		}
		data["Undo"] = op.Action
	} else if ev.Outcome == audit.Applied {
		var fe directory.FieldErrors
		if errors.As(err, &fe) && len(fe) > 0 && fe[0].Message != "" {
			data["NoUndo"] = strings.ToUpper(fe[0].Message[:1]) + fe[0].Message[1:] + "."
		}
	}
	if ev.Reverts != nil {
		data["Reverts"] = *ev.Reverts
	}
	s.render(c, status, "audit-event", fmt.Sprintf("Event %d", ev.Index), data, nil)
}

// revertEvent undoes an applied event as the API's revert does: the inverse op, built from what
// the event recorded, goes through the pipeline as the person (authorized, gated and audited,
// linked to the event). Forcing it over later changes needs a tier-0 admin; without force, a
// later change of the object shows the events that made it.
func (s *Server) revertEvent(c *ctx) {
	ev, ok := s.readableEvent(c)
	if !ok {
		return
	}
	force := c.r.PostFormValue("force") != ""
	op, err := change.Inverse(ev, force)
	if err != nil {
		s.fail(c, err)
		return
	}
	if j := strings.TrimSpace(c.r.PostFormValue("justification")); j != "" {
		op.Justification = j
	}
	idx := ev.Index
	m := meta(c.r)
	m.Transport, m.Reverts = audit.TransportUndo, &idx
	if ev.Unreviewed {
		m.RevertsRequest = ev.RequestID
	}
	if force && !s.tier0(c.me) {
		s.fail(c, s.Pipeline.Refuse(c.r.Context(), c.me, m, op, delegation.ReasonNotAuthorized,
			"forcing an undo over later changes needs a tier-0 admin; undo without force, or revert the later events first"))
		return
	}
	res, err := s.Pipeline.Submit(c.r.Context(), c.me, m, op)
	if errors.Is(err, directory.ErrStale) {
		s.renderEvent(c, http.StatusConflict, ev, s.changedSince(c.r.Context(), ev))
		return
	}
	if err != nil {
		s.fail(c, err)
		return
	}
	http.Redirect(c.w, c.r, fmt.Sprintf("/audit/%d?done=%s", res.Event, url.QueryEscape(fmt.Sprintf("Undone: event %d reverted", idx))),
		http.StatusSeeOther)
}

// changedSince lists the applied events that changed ev's object after it (not undos of it),
// oldest first: what stands in the way of undoing ev.
func (s *Server) changedSince(ctx context.Context, ev audit.Event) *conflictView {
	cv := &conflictView{Detail: fmt.Sprintf("The %s %s changed after event %d: undo the later changes first, or force the undo (tier-0 admins).",
		directory.Kind(ev.Target.Type).Noun(), ev.Target.Name, ev.Index)}
	if ev.Target.ID == "" {
		return cv
	}
	evs, _, err := s.Audit.Events(ctx, audit.Query{Target: ev.Target.ID, Outcome: audit.Applied, Limit: 20})
	if err != nil {
		return cv
	}
	for _, e := range evs {
		if e.Index > ev.Index && (e.Reverts == nil || *e.Reverts != ev.Index) {
			cv.Later = append([]audit.Event{e}, cv.Later...)
		}
	}
	return cv
}

// checkpointView is the latest signed checkpoint and what checking it found.
type checkpointView struct {
	None    bool   // no checkpoint signed yet
	NoKey   bool   // the server signs none (no signing key)
	Size    uint64 // events it covers
	Root    string // base64 root hash
	Short   string // its first characters
	Covers  time.Time
	OK      bool   // signature verifies and the stored log matches
	Problem string // otherwise, what is wrong
}

// checkpointStatus reads the latest checkpoint and checks it cheaply, for the audit list: the
// signature with the server's public key, and the stored log at its size against its root (the
// newest event it covers is proved included, with the tree nodes the store keeps: a few reads
// whatever the log's size). A full recomputation is deputy audit verify's work.
func (s *Server) checkpointStatus(ctx context.Context) *checkpointView {
	if s.Evidence == nil {
		return &checkpointView{NoKey: true}
	}
	signed, cp, err := s.Evidence.Latest(ctx)
	if errors.Is(err, audit.ErrNoCheckpoint) {
		return &checkpointView{None: true}
	}
	if err != nil {
		return &checkpointView{Problem: "it could not be read: " + err.Error()}
	}
	root := base64.StdEncoding.EncodeToString(cp.Root)
	v := &checkpointView{Size: cp.Size, Root: root, Short: root[:min(12, len(root))] + "…"}
	verifier, err := note.NewVerifier(s.AuditKey)
	if err != nil {
		v.Problem = "the server's public key is missing or unreadable, so the signature cannot be checked"
		return v
	}
	if _, err := audit.OpenCheckpoint(signed, note.VerifierList(verifier)); err != nil {
		v.Problem = "its signature does not verify with the server's public key"
		return v
	}
	if cp.Size == 0 {
		v.OK = true
		return v
	}
	p, err := s.Evidence.ProveInclusion(ctx, cp.Size-1, cp.Size)
	if err != nil {
		v.Problem = "the stored log does not reach its size: " + err.Error()
		return v
	}
	p.Checkpoint = string(signed)
	if err := p.Verify(note.VerifierList(verifier)); err != nil {
		v.Problem = "the stored log does not match it: " + strings.TrimPrefix(err.Error(), "audit: ")
		return v
	}
	if e, err := audit.Decode([]byte(p.Event)); err == nil {
		v.Covers = e.Time
	}
	v.OK = true
	return v
}

// maxFeedUpload bounds an uploaded HR feed (as the API's MaxFeed does).
const maxFeedUpload = 64 << 20

// limitBody bounds a request's body before h reads it (the session check parses the form).
func limitBody(n int64, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, n)
		h(w, r)
	}
}

// hrAllowed lets a tier-0 admin through, as the API's HR import does; anyone else finds no
// such page.
func (s *Server) hrAllowed(c *ctx) bool {
	if s.HR != nil && s.tier0(c.me) {
		return true
	}
	s.fail(c, directory.NotFound("page", c.r.URL.Path))
	return false
}

// hrPage is the upload form and the latest runs.
func (s *Server) hrPage(c *ctx) {
	if !s.hrAllowed(c) {
		return
	}
	s.renderHR(c, http.StatusOK, "")
}

func (s *Server) renderHR(c *ctx, status int, problem string) {
	runs, err := s.HR.Runs(c.r.Context(), 10)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, status, "hr", "HR feed", map[string]any{"Runs": runs, "Error": problem}, nil)
}

// hrPlan plans the uploaded feed without applying it (a dry run, recorded as a planned run) and
// keeps the feed for its apply when applying it would not stop.
func (s *Server) hrPlan(c *ctx) {
	if !s.hrAllowed(c) {
		return
	}
	file, hdr, err := c.r.FormFile("feed")
	if err != nil {
		s.renderHR(c, http.StatusUnprocessableEntity, "Choose the feed's CSV file.")
		return
	}
	defer file.Close()
	body, err := io.ReadAll(file)
	if err != nil {
		s.renderHR(c, http.StatusRequestEntityTooLarge, fmt.Sprintf("The feed could not be read, or is larger than %d MB.", maxFeedUpload>>20))
		return
	}
	f := &storedFeed{owner: c.session.IDHash, name: feedName(hdr.Filename), body: body,
		skipInvalid: c.r.PostFormValue("skip_invalid") != "", allowMass: c.r.PostFormValue("allow_mass_change") != ""}
	run, plan, feed, err := s.importFeed(c, f, true)
	if err != nil {
		s.hrFailed(c, err)
		return
	}
	people, changed := changedPeople(plan, maxListedPeople)
	data := map[string]any{"Run": run, "Plan": plan, "People": people, "Changed": changed, "Problems": feed.Problems,
		"Name": f.name, "SkipInvalid": f.skipInvalid, "AllowMass": f.allowMass}
	if run.Stopped == "" && plan.Ops > 0 {
		data["Feed"] = s.feeds.put(f)
	}
	s.render(c, http.StatusOK, "hr-plan", "HR feed plan", data, nil)
}

// hrApply applies the feed the person planned, exactly as uploaded.
func (s *Server) hrApply(c *ctx) {
	if !s.hrAllowed(c) {
		return
	}
	f := s.feeds.take(c.session.IDHash, c.r.PostFormValue("feed"))
	if f == nil {
		s.renderHR(c, http.StatusConflict, "That plan has expired (plans are kept 15 minutes) or was applied already: upload the feed again.")
		return
	}
	// A whole feed takes a while to apply (a minute for 100,000 people): do not cut the answer off.
	_ = http.NewResponseController(c.w).SetWriteDeadline(time.Now().Add(time.Hour))
	run, _, _, err := s.importFeed(c, f, false)
	if err != nil {
		s.hrFailed(c, err)
		return
	}
	msg := fmt.Sprintf("Applied: the changes of %d people", run.Applied)
	if len(run.Failed) > 0 {
		msg += fmt.Sprintf("; %d people's failed", len(run.Failed))
	}
	http.Redirect(c.w, c.r, "/hr/runs/"+url.PathEscape(run.ID)+"?done="+url.QueryEscape(msg), http.StatusSeeOther)
}

// importFeed parses a stored feed and imports it as the person: a plan (dry run) or the run.
func (s *Server) importFeed(c *ctx, f *storedFeed, dryRun bool) (*lifecycle.Run, *lifecycle.Plan, lifecycle.Feed, error) {
	feed, err := lifecycle.ParseCSV(bytes.NewReader(f.body), lifecycle.DefaultMapping())
	if err != nil {
		return nil, nil, feed, err
	}
	sum := sha256.Sum256(f.body)
	me := c.me
	run, plan, err := s.HR.Import(c.r.Context(), feed, lifecycle.ImportOptions{DryRun: dryRun, SkipInvalid: f.skipInvalid,
		AllowMassChange: f.allowMass, Today: s.HR.Today(), Source: f.name, SHA256: hex.EncodeToString(sum[:]), By: &me})
	return run, plan, feed, err
}

// hrFailed explains a feed that could not be planned or applied, on the upload page.
func (s *Server) hrFailed(c *ctx, err error) {
	switch {
	case errors.Is(err, lifecycle.ErrNoRules):
		s.renderHR(c, http.StatusConflict, "No lifecycle rules are set yet: set them first (deputy hr rules set FILE), then deputy hr setup.")
	case errors.Is(err, lifecycle.ErrStopped):
		s.renderHR(c, http.StatusConflict, "Nothing was applied: "+strings.TrimPrefix(err.Error(), lifecycle.ErrStopped.Error()+": "))
	case errors.Is(err, directory.ErrInvalid):
		s.renderHR(c, http.StatusUnprocessableEntity, "This file cannot be used as a feed: "+strings.TrimPrefix(err.Error(), "lifecycle: "))
	default:
		s.fail(c, err)
	}
}

// hrRun shows a run: its counts, who failed and why, and the audit events it recorded.
func (s *Server) hrRun(c *ctx) {
	if !s.hrAllowed(c) {
		return
	}
	runs, err := s.HR.Runs(c.r.Context(), directory.MaxLimit)
	if err != nil {
		s.fail(c, err)
		return
	}
	i := slices.IndexFunc(runs, func(r lifecycle.Run) bool { return r.ID == c.r.PathValue("id") })
	if i < 0 {
		s.fail(c, directory.NotFound("run", c.r.PathValue("id")))
		return
	}
	evs, next, err := s.Audit.Events(c.r.Context(), audit.Query{Authority: runs[i].ID, Limit: 100})
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "hr-run", "HR feed run", map[string]any{"Run": runs[i], "Events": evs, "More": next > 0}, nil)
}

// maxListedPeople bounds the people a plan page lists (the totals count them all).
const maxListedPeople = 500

// changedPeople are the people a plan changes (or leaves a note about), at most limit, and how
// many there are.
func changedPeople(p *lifecycle.Plan, limit int) ([]lifecycle.PersonPlan, int) {
	var (
		out []lifecycle.PersonPlan
		n   int
	)
	for _, pp := range p.People {
		if pp.Kind != lifecycle.KindUnchanged || len(pp.Notes) > 0 {
			if n++; len(out) < limit {
				out = append(out, pp)
			}
		}
	}
	return out, n
}

// feedName is the uploaded file's name as a run's source: its base name, printable, bounded.
func feedName(name string) string {
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	name = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return -1
		}
		return r
	}, name)
	if len(name) > 200 {
		name = name[:200]
	}
	if name == "" {
		return "portal"
	}
	return name
}

// feedTTL is how long an uploaded feed waits for its apply.
const feedTTL = 15 * time.Minute

// maxStoredFeeds and maxStoredBytes bound what the feed store holds; the oldest go first.
const (
	maxStoredFeeds = 16
	maxStoredBytes = 256 << 20
)

// storedFeed is an uploaded feed between its plan and its apply, with the options it was
// planned with, for the session that uploaded it.
type storedFeed struct {
	owner                  string // the session's ID hash
	name                   string
	body                   []byte
	skipInvalid, allowMass bool
	expires                time.Time
}

// feedStore keeps uploaded feeds in memory, by a random ID, for their session: one per session
// (a new plan replaces the previous), each for feedTTL, taken once. A restart forgets them; the
// person uploads again.
type feedStore struct {
	mu sync.Mutex
	m  map[string]*storedFeed
}

// put stores f and returns its ID.
func (fs *feedStore) put(f *storedFeed) string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	fs.mu.Lock()
	defer fs.mu.Unlock()
	now := time.Now()
	total := len(f.body)
	for k, g := range fs.m {
		if g.owner == f.owner || now.After(g.expires) {
			delete(fs.m, k)
			continue
		}
		total += len(g.body)
	}
	for len(fs.m) >= maxStoredFeeds || total > maxStoredBytes && len(fs.m) > 0 {
		oldest := ""
		for k, g := range fs.m {
			if oldest == "" || g.expires.Before(fs.m[oldest].expires) {
				oldest = k
			}
		}
		total -= len(fs.m[oldest].body)
		delete(fs.m, oldest)
	}
	f.expires = now.Add(feedTTL)
	fs.m[id] = f
	return id
}

// take removes and returns the feed id names, if it belongs to owner and has not expired.
func (fs *feedStore) take(owner, id string) *storedFeed {
	fs.mu.Lock()
	defer fs.mu.Unlock()
	f := fs.m[id]
	if f == nil || f.owner != owner {
		return nil
	}
	delete(fs.m, id)
	if time.Now().After(f.expires) {
		return nil
	}
	return f
}

// residualAccess is the leaver report: every disabled or departed identity that still holds a
// membership, an assignment, an owned object or a live credential (empty after every HR run).
// For those who read the whole trail (audit.read over everything), as on the API; others find
// no such page.
func (s *Server) residualAccess(c *ctx) {
	ctx := c.r.Context()
	dec, err := s.Pipeline.Ask(ctx, &delegation.Question{Actor: c.me, Action: delegation.AuditRead})
	if err != nil {
		s.fail(c, err)
		return
	}
	if !dec.Allow || s.HR == nil {
		s.fail(c, directory.NotFound("page", c.r.URL.Path))
		return
	}
	items, err := s.HR.Residual(ctx)
	if err != nil {
		s.fail(c, err)
		return
	}
	s.render(c, http.StatusOK, "hr-residual", "Residual access", map[string]any{"Items": items}, nil)
}
