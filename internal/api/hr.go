package api

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
	"github.com/deputy-iam/deputy/internal/httpx"
	"github.com/deputy-iam/deputy/internal/lifecycle"
)

// HR is the HR lifecycle as the API drives it (*lifecycle.Service): its rules, feed imports,
// recomputation, the record of runs, the residual-access report, and the one-time setup of what
// the rules need.
type HR interface {
	Rules(ctx context.Context) (*lifecycle.RuleSet, error)
	SetRules(ctx context.Context, actor delegation.Actor, meta change.Meta, rs lifecycle.RuleSet) error
	Import(ctx context.Context, feed lifecycle.Feed, opt lifecycle.ImportOptions) (*lifecycle.Run, *lifecycle.Plan, error)
	Recompute(ctx context.Context, opt lifecycle.ImportOptions) (*lifecycle.Run, *lifecycle.Plan, error)
	Runs(ctx context.Context, limit int) ([]lifecycle.Run, error)
	Residual(ctx context.Context) ([]lifecycle.Residual, error)
	Today() time.Time
	// Setup submits, as actor, the ops that create what the rules in force need (their OUs and
	// groups, the lifecycle role and system:lifecycle's assignments), and returns the result of
	// each op applied; it applies nothing twice.
	Setup(ctx context.Context, actor delegation.Actor, meta change.Meta) ([]change.Result, error)
}

// WithHR serves the HR lifecycle endpoints from h; without it they answer 503.
func (s *Server) WithHR(h HR) *Server {
	s.hr = h
	return s
}

// The audit actions of HR requests refused to a caller who is not a tier-0 admin (an applied
// run is recorded by its ops, each naming the run as its authority).
const (
	actionHRImport    = "lifecycle.import"
	actionHRRecompute = "lifecycle.recompute"
	actionHRSetup     = "lifecycle.setup"
)

// MaxFeed is the largest HR feed an import reads.
const MaxFeed = 64 << 20

// maxListedProblems bounds the rows a refused feed's problem lists; a dry run with
// skip_invalid=true answers every problem.
const maxListedProblems = 1000

func (s *Server) registerHR(route func(string, http.HandlerFunc)) {
	route("POST /api/v1/hr/imports", s.hrImport)
	route("POST /api/v1/hr/recompute", s.hrRecompute)
	route("GET /api/v1/hr/runs", s.hrRuns)
	route("POST /api/v1/hr/setup", s.hrSetup)
	route("GET /api/v1/lifecycle/rules", s.getLifecycleRules)
	route("PUT /api/v1/lifecycle/rules", s.putLifecycleRules)
	route("GET /api/v1/reports/residual-access", s.residualAccess)
}

// runView answers an import or a recompute: the run as recorded, its plan and, for an import,
// the feed's problems (the rows left out).
// longRun lifts the server's write timeout for a request that applies a whole feed: a run of
// 100,000 people takes about a minute, and its answer must not be cut off.
func longRun(w http.ResponseWriter) {
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(time.Hour))
}

// changedOnly is the plan as the API answers it: the people the run changes (or would), not the
// unchanged ones, which for a daily feed are nearly everyone.
func changedOnly(p *lifecycle.Plan) *lifecycle.Plan {
	if p == nil {
		return nil
	}
	out := *p
	out.People = make([]lifecycle.PersonPlan, 0, len(p.People)/8)
	for _, pp := range p.People {
		if pp.Kind != lifecycle.KindUnchanged || len(pp.Notes) > 0 {
			out.People = append(out.People, pp)
		}
	}
	return &out
}

type runView struct {
	Run      *lifecycle.Run      `json:"run"`
	Plan     *lifecycle.Plan     `json:"plan"`
	Problems []lifecycle.Problem `json:"problems,omitzero"`
}

// setupItem is one op `hr setup` applied.
type setupItem struct {
	Action string        `json:"action"`
	Target directory.Ref `json:"target"`
	Event  int64         `json:"event"`
}

// noHR answers when the server runs without the HR lifecycle.
func (s *Server) noHR(w http.ResponseWriter, r *http.Request) bool {
	if s.hr != nil {
		return false
	}
	s.fail(w, r, httpx.NewProblem(http.StatusServiceUnavailable, "hr_unavailable", "this server does not run the HR lifecycle"))
	return true
}

// hrTarget is the target recorded for a refused HR request.
var hrTarget = directory.Ref{Kind: directory.KindConfig, Name: "hr_feed"}

// requireTier0 lets a tier-0 admin through; anyone else is refused with a recorded denial of
// action. what completes "only a tier-0 admin may ...".
func (s *Server) requireTier0(w http.ResponseWriter, r *http.Request, action, what string) bool {
	a := actor(r)
	if s.tier0(a) {
		return true
	}
	err := s.pipeline.Refuse(r.Context(), a, meta(r), change.Op{Action: delegation.Action(action), Target: hrTarget},
		delegation.ReasonNotAuthorized, "only a tier-0 admin may "+what)
	s.failDenied(w, r, err)
	return false
}

// boolParam reads a query flag: absent, "true" or "false".
func boolParam(r *http.Request, name string, fe *directory.FieldErrors) bool {
	switch r.URL.Query().Get(name) {
	case "", "false":
		return false
	case "true":
		return true
	}
	fe.Add(name, "must be true or false")
	return false
}

// runOptions reads the options of an import or recompute; feed adds those only a feed has.
func (s *Server) runOptions(r *http.Request, feed bool) (lifecycle.ImportOptions, error) {
	var fe directory.FieldErrors
	opt := lifecycle.ImportOptions{DryRun: boolParam(r, "dry_run", &fe), AllowMassChange: boolParam(r, "allow_mass_change", &fe),
		Today: s.hr.Today()}
	if feed {
		opt.SkipInvalid = boolParam(r, "skip_invalid", &fe)
		opt.Source = "api"
		if name := strings.TrimSpace(r.URL.Query().Get("filename")); name != "" {
			if len(name) > 256 || strings.ContainsFunc(name, unicode.IsControl) {
				fe.Add("filename", "must be at most 256 characters, without control characters")
			}
			opt.Source = name
		}
	}
	return opt, fe.Err()
}

// hrImport plans and, unless it is a dry run, applies an HR feed. Only a tier-0 admin may
// import, even a dry run: the plan reveals the directory.
func (s *Server) hrImport(w http.ResponseWriter, r *http.Request) {
	if s.noHR(w, r) || !s.requireTier0(w, r, actionHRImport, "import an HR feed") {
		return
	}
	longRun(w)
	opt, err := s.runOptions(r, true)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	feed, unit, sum, err := readFeed(w, r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	opt.SHA256 = sum
	by := actor(r)
	opt.By = &by
	run, plan, err := s.hr.Import(r.Context(), feed, opt)
	if err != nil {
		s.failRun(w, r, run, err, feed.Problems, unit, opt.SkipInvalid)
		return
	}
	problems := feed.Problems
	if problems == nil {
		problems = []lifecycle.Problem{}
	}
	httpx.WriteJSON(w, http.StatusOK, runView{Run: run, Plan: changedOnly(plan), Problems: problems})
}

// readFeed reads the body as a CSV feed (with the mapping of the query) or a JSON one. It
// returns the feed, how its problems name a row ("line" or "person") and the body's SHA-256.
func readFeed(w http.ResponseWriter, r *http.Request) (lifecycle.Feed, string, string, error) {
	ct := r.Header.Get("Content-Type")
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil || (mt != "text/csv" && mt != "application/json") {
		return lifecycle.Feed{}, "", "", httpx.NewProblem(http.StatusUnsupportedMediaType, "unsupported_media_type",
			fmt.Sprintf("the feed must be CSV (text/csv) or JSON (application/json), not %q", ct))
	}
	mapping := r.URL.Query().Get("mapping")
	h := sha256.New()
	body := io.TeeReader(http.MaxBytesReader(w, r.Body, MaxFeed), h)
	var (
		feed lifecycle.Feed
		unit = "line"
	)
	if mt == "text/csv" {
		m, err := lifecycle.ParseMapping(mapping)
		if err != nil {
			return feed, "", "", invalidInput("mapping", err)
		}
		feed, err = lifecycle.ParseCSV(body, m)
		if err == nil {
			_, err = io.Copy(io.Discard, body) // the digest covers the whole body
		}
		if err != nil {
			return feed, "", "", feedError(err)
		}
	} else {
		if mapping != "" {
			return feed, "", "", directory.Invalid("mapping", "applies to a CSV feed only")
		}
		unit = "person"
		b, err := io.ReadAll(body)
		if err == nil {
			feed, err = lifecycle.ParseJSON(b)
		}
		if err != nil {
			return feed, "", "", feedError(err)
		}
	}
	return feed, unit, hex.EncodeToString(h.Sum(nil)), nil
}

// feedError maps an error reading or parsing a feed to what the client sees: 413 for a feed
// over MaxFeed, 422 for one that cannot be used at all, 400 for a body that could not be read.
func feedError(err error) error {
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return httpx.NewProblem(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the feed is larger than %d bytes", MaxFeed))
	case errors.Is(err, directory.ErrInvalid):
		return invalidInput("body", err)
	}
	return httpx.NewProblem(http.StatusBadRequest, "bad_body", "the body could not be read")
}

// invalidInput makes an error that wraps directory.ErrInvalid (as lifecycle's parse errors do)
// a field error the client sees as 422.
func invalidInput(field string, err error) error {
	var fe directory.FieldErrors
	if errors.As(err, &fe) {
		return err
	}
	msg := strings.TrimSuffix(err.Error(), ": "+directory.ErrInvalid.Error())
	return directory.Invalid(field, "%s", strings.TrimPrefix(msg, "lifecycle: "))
}

// failRun answers a run that failed: a 409 (no_rules) before any rules are set; for a run
// stopped for safety, a 422 (invalid_feed: each bad row in errors) or a 409 (mass_change), with
// the stop reason as the detail.
func (s *Server) failRun(w http.ResponseWriter, r *http.Request, run *lifecycle.Run, err error, problems []lifecycle.Problem,
	unit string, skipInvalid bool) {
	if errors.Is(err, lifecycle.ErrNoRules) {
		s.fail(w, r, httpx.NewProblem(http.StatusConflict, "no_rules", strings.TrimPrefix(err.Error(), "lifecycle: ")))
		return
	}
	if !errors.Is(err, lifecycle.ErrStopped) {
		s.fail(w, r, err)
		return
	}
	reason := strings.TrimPrefix(err.Error(), lifecycle.ErrStopped.Error()+": ")
	if run != nil && run.Stopped != "" {
		reason = run.Stopped
	}
	if len(problems) == 0 || skipInvalid {
		s.fail(w, r, httpx.NewProblem(http.StatusConflict, "mass_change", reason))
		return
	}
	p := httpx.NewProblem(http.StatusUnprocessableEntity, "invalid_feed", reason)
	for i, pr := range problems {
		if i == maxListedProblems {
			p.Fields = append(p.Fields, directory.FieldError{Field: "feed",
				Message: fmt.Sprintf("%d more problems are not listed (a dry run with skip_invalid=true lists them all)", len(problems)-i)})
			break
		}
		field := unit + " " + strconv.Itoa(pr.Line)
		if pr.Field != "" {
			field += ": " + pr.Field
		}
		p.Fields = append(p.Fields, directory.FieldError{Field: field, Message: pr.Message})
	}
	s.fail(w, r, p)
}

// hrRecompute applies the rules to the directory as it is (see lifecycle.Service.Recompute).
func (s *Server) hrRecompute(w http.ResponseWriter, r *http.Request) {
	if s.noHR(w, r) || !s.requireTier0(w, r, actionHRRecompute, "recompute the HR lifecycle") {
		return
	}
	longRun(w)
	opt, err := s.runOptions(r, false)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	by := actor(r)
	opt.By = &by
	run, plan, err := s.hr.Recompute(r.Context(), opt)
	if err != nil {
		s.failRun(w, r, run, err, nil, "", false)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, runView{Run: run, Plan: changedOnly(plan)})
}

// hrRuns lists the latest runs, newest first, for whoever may read the whole audit trail.
func (s *Server) hrRuns(w http.ResponseWriter, r *http.Request) {
	if s.noHR(w, r) || !s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil) {
		return
	}
	limit := 0
	if l := r.URL.Query().Get("limit"); l != "" {
		n, err := strconv.Atoi(l)
		if err != nil || n < 1 || n > directory.MaxLimit {
			s.fail(w, r, directory.Invalid("limit", "must be a number from 1 to %d", directory.MaxLimit))
			return
		}
		limit = n
	}
	runs, err := s.hr.Runs(r.Context(), limit)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if runs == nil {
		runs = []lifecycle.Run{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": runs})
}

// hrSetup creates what the rules in force need, for a tier-0 admin.
func (s *Server) hrSetup(w http.ResponseWriter, r *http.Request) {
	if s.noHR(w, r) || !s.requireTier0(w, r, actionHRSetup, "set up the HR lifecycle") {
		return
	}
	results, err := s.hr.Setup(r.Context(), actor(r), meta(r))
	if s.asPending(w, r, err) {
		return
	}
	if err != nil {
		s.failDenied(w, r, err)
		return
	}
	items := make([]setupItem, 0, len(results))
	for _, res := range results {
		it := setupItem{Action: setupAction(res.Target.Kind), Target: res.Target, Event: res.Event}
		if res.Event > 0 {
			if ev, err := s.audit.Event(r.Context(), res.Event); err == nil {
				it.Action = ev.Action
			}
		}
		items = append(items, it)
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": items})
}

// setupAction is the action of a setup op that created an object of kind (when its event cannot
// be read).
func setupAction(kind directory.Kind) string {
	switch kind {
	case directory.KindOU:
		return string(delegation.OUCreate)
	case directory.KindGroup:
		return string(delegation.GroupCreate)
	case directory.KindRole:
		return string(delegation.RoleCreate)
	case directory.KindAssignment:
		return string(delegation.RoleAssign)
	}
	return ""
}

// getLifecycleRules answers the rule set in force, its defaults filled in. Any authenticated
// user may read it: it says which birthright each kind of worker gets.
func (s *Server) getLifecycleRules(w http.ResponseWriter, r *http.Request) {
	if s.noHR(w, r) {
		return
	}
	rs, err := s.hr.Rules(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if rs.Rules == nil {
		rs.Rules = []lifecycle.Rule{}
	}
	httpx.WriteJSON(w, http.StatusOK, rs)
}

// putLifecycleRules replaces the rule set (tier-0 admins; the lifecycle service refuses anyone
// else with a recorded denial). It applies to everyone at the next run or recompute.
func (s *Server) putLifecycleRules(w http.ResponseWriter, r *http.Request) {
	if s.noHR(w, r) {
		return
	}
	var rs lifecycle.RuleSet
	if err := httpx.Decode(w, r, &rs); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.hr.SetRules(r.Context(), actor(r), meta(r), rs); err != nil {
		s.failDenied(w, r, err)
		return
	}
	s.getLifecycleRules(w, r)
}

// residualAccess lists the departed identities that still hold something, for whoever may read
// the whole audit trail.
func (s *Server) residualAccess(w http.ResponseWriter, r *http.Request) {
	if s.noHR(w, r) || !s.allowed(w, r, delegation.AuditRead, directory.Ref{}, nil) {
		return
	}
	res, err := s.hr.Residual(r.Context())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	if res == nil {
		res = []lifecycle.Residual{}
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"items": res})
}
