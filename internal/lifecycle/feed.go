package lifecycle

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/mail"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"golang.org/x/text/unicode/norm"

	"github.com/deputy-iam/deputy/internal/directory"
)

// The fields of a feed row, in the order of the columns in Deputy's own CSV layout.
const (
	fEmployeeID = iota
	fGivenName
	fFamilyName
	fEmail
	fDepartment
	fTitle
	fManagerID
	fLocation
	fEmploymentType
	fStartDate
	fEndDate
	fStatus
	fCostCenter
	numFields
)

// fieldNames are the JSON names of Person's fields, indexed by the f* constants. Read-only.
var fieldNames = [numFields]string{
	"employee_id", "given_name", "family_name", "email", "department", "title", "manager_id",
	"location", "employment_type", "start_date", "end_date", "status", "cost_center",
}

// Limits on feed values, in characters: those of the directory fields they become, so that a
// row the feed accepts is never refused when its user is created.
const (
	maxFeedID    = 64  // employee_id, manager_id, employment_type
	maxFeedName  = 128 // names, department, title, location (the directory's person-name limit)
	maxFeedField = 256 // email, cost_center
)

// fieldLimit is the most characters field f may hold.
func fieldLimit(f int) int {
	switch f {
	case fEmploymentType:
		return maxFeedID
	case fGivenName, fFamilyName, fDepartment, fTitle, fLocation:
		return maxFeedName
	}
	return maxFeedField
}

// fieldIndex returns the f* index of a field name, or -1.
func fieldIndex(name string) int {
	for i, n := range fieldNames {
		if n == name {
			return i
		}
	}
	return -1
}

// requiredField reports whether a row without a value for field i is a problem; a mapping must
// name a column for each of these.
func requiredField(i int) bool {
	switch i {
	case fEmployeeID, fGivenName, fFamilyName, fStartDate, fStatus:
		return true
	}
	return false
}

// Mapping maps each Person field, by its JSON name (employee_id, given_name, family_name, email,
// department, title, manager_id, location, employment_type, start_date, end_date, status,
// cost_center), to the header of the CSV column that holds it. Headers match case-insensitively
// and ignoring surrounding spaces. A field mapped to "" (or absent from the map) is not carried
// by the feed and is empty in every row; employee_id, given_name, family_name, start_date and
// status must be mapped. Columns the mapping does not name are ignored.
type Mapping map[string]string

// DefaultMapping returns the identity mapping: every field is read from the column of the same
// name, as in Deputy's CSV layout. The caller owns the returned map.
func DefaultMapping() Mapping {
	m := make(Mapping, numFields)
	for _, n := range fieldNames {
		m[n] = n
	}
	return m
}

// ParseMapping reads overrides of the default mapping written as "field=header,field=header"
// (spaces around names are ignored; "" gives the default mapping; "field=" says the feed does
// not carry an optional field). An unknown field, a field named twice, an unmapped required
// field or two fields read from one column is an error wrapping directory.ErrInvalid.
func ParseMapping(s string) (Mapping, error) {
	m := DefaultMapping()
	if strings.TrimSpace(s) == "" {
		return m, nil
	}
	seen := map[string]bool{}
	for pair := range strings.SplitSeq(s, ",") {
		field, header, ok := strings.Cut(pair, "=")
		field, header = strings.TrimSpace(field), strings.TrimSpace(header)
		switch {
		case !ok:
			return nil, fmt.Errorf("lifecycle: mapping %q: want field=header: %w", strings.TrimSpace(pair), directory.ErrInvalid)
		case fieldIndex(field) < 0:
			return nil, fmt.Errorf("lifecycle: mapping: unknown field %q (fields: %s): %w",
				field, strings.Join(fieldNames[:], ", "), directory.ErrInvalid)
		case seen[field]:
			return nil, fmt.Errorf("lifecycle: mapping: field %q is mapped twice: %w", field, directory.ErrInvalid)
		}
		seen[field] = true
		m[field] = header
	}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// check validates the mapping itself: known fields, required fields mapped, no column read twice.
func (m Mapping) check() error {
	byHeader := map[string]string{}
	for field, header := range m {
		i := fieldIndex(field)
		if i < 0 {
			return fmt.Errorf("lifecycle: mapping: unknown field %q: %w", field, directory.ErrInvalid)
		}
		key := headerKey(header)
		if key == "" {
			continue
		}
		if other, dup := byHeader[key]; dup {
			a, b := min(field, other), max(field, other)
			return fmt.Errorf("lifecycle: mapping: %s and %s both read column %q: %w", a, b, header, directory.ErrInvalid)
		}
		byHeader[key] = field
	}
	for i, n := range fieldNames {
		if requiredField(i) && headerKey(m[n]) == "" {
			return fmt.Errorf("lifecycle: mapping: required field %s has no column: %w", n, directory.ErrInvalid)
		}
	}
	return nil
}

// headerKey is the form in which headers are compared.
func headerKey(h string) string {
	return strings.ToLower(strings.TrimSpace(strings.TrimPrefix(h, "\ufeff")))
}

// columns resolves the mapping against a CSV header: the column index of every field, or -1
// for a field the feed does not carry.
func (m Mapping) columns(header []string) ([numFields]int, error) {
	var cols [numFields]int
	if err := m.check(); err != nil {
		return cols, err
	}
	index := make(map[string]int, len(header))
	for i, h := range header {
		k := headerKey(h)
		if _, dup := index[k]; dup {
			index[k] = -2 // ambiguous; an error only if the mapping names it
			continue
		}
		index[k] = i
	}
	var missing []string
	for f, n := range fieldNames {
		cols[f] = -1
		want := m[n]
		if headerKey(want) == "" {
			continue
		}
		i, ok := index[headerKey(want)]
		switch {
		case !ok:
			missing = append(missing, fmt.Sprintf("%q (for %s)", strings.TrimSpace(want), n))
		case i == -2:
			return cols, fmt.Errorf("lifecycle: feed header: two columns are named %q: %w", strings.TrimSpace(want), directory.ErrInvalid)
		default:
			cols[f] = i
		}
	}
	if len(missing) > 0 {
		return cols, fmt.Errorf("lifecycle: feed header lacks column %s: %w", strings.Join(missing, ", "), directory.ErrInvalid)
	}
	return cols, nil
}

// ParseCSV reads an HR feed in CSV form (RFC 4180: quoted fields, embedded newlines, CRLF or LF
// line ends, an optional UTF-8 byte-order mark) whose columns m names, and validates it (see
// Feed). The error is non-nil only when the feed cannot be used at all: the stream fails, there
// is no header line, or a column the mapping names is absent (those wrap directory.ErrInvalid).
// Everything wrong with a row is a Problem that carries the row's line in the file (the header
// is line 1; a quoted newline counts), and such a row is not among People.
func ParseCSV(r io.Reader, m Mapping) (Feed, error) {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = -1
	cr.ReuseRecord = true
	header, err := cr.Read()
	switch {
	case errors.Is(err, io.EOF):
		return Feed{}, fmt.Errorf("lifecycle: feed is empty: no header line: %w", directory.ErrInvalid)
	case err != nil:
		var pe *csv.ParseError
		if errors.As(err, &pe) {
			return Feed{}, fmt.Errorf("lifecycle: feed header: %w: %w", err, directory.ErrInvalid)
		}
		return Feed{}, fmt.Errorf("lifecycle: read feed: %w", err)
	}
	width := len(header)
	cols, err := m.columns(header)
	if err != nil {
		return Feed{}, err
	}
	v := newValidator("line", 0)
	var vals [numFields]string
	for {
		rec, err := cr.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if !errors.As(err, &pe) {
				return Feed{}, fmt.Errorf("lifecycle: read feed: %w", err)
			}
			v.problem(pe.StartLine, "", "", "is not valid CSV: "+pe.Err.Error())
			continue
		}
		line, _ := cr.FieldPos(0)
		if len(rec) != width {
			v.problem(line, recordID(rec, cols[fEmployeeID]), "", fmt.Sprintf("has %d columns; the header has %d", len(rec), width))
			continue
		}
		for f, c := range cols {
			vals[f] = ""
			if c >= 0 {
				vals[f] = rec[c]
			}
		}
		v.row(line, &vals)
	}
	return v.feed(), nil
}

// recordID returns the employee_id of a malformed record, when it has a usable one.
func recordID(rec []string, col int) string {
	if col < 0 || col >= len(rec) {
		return ""
	}
	if id, msg := cleanField(rec[col], maxFeedID, false); msg == "" {
		return id
	}
	return ""
}

// jsonFeed is the body of a JSON push. Dates are "2006-01-02" strings, so the people are read
// into strings and validated like CSV rows.
type jsonFeed struct {
	People *[]jsonPerson `json:"people"`
}

type jsonPerson struct {
	EmployeeID     string `json:"employee_id"`
	GivenName      string `json:"given_name"`
	FamilyName     string `json:"family_name"`
	Email          string `json:"email"`
	Department     string `json:"department"`
	Title          string `json:"title"`
	ManagerID      string `json:"manager_id"`
	Location       string `json:"location"`
	EmploymentType string `json:"employment_type"`
	StartDate      string `json:"start_date"`
	EndDate        string `json:"end_date"`
	Status         string `json:"status"`
	CostCenter     string `json:"cost_center"`
}

// ParseJSON reads an HR feed pushed as JSON, {"people": [{"employee_id": ..., "start_date":
// "2006-01-02", ...}, ...]}, with the field names of Person, and validates it as ParseCSV does.
// A Problem's Line is the person's 1-based position in the array and messages say "person N".
// The error is non-nil (wrapping directory.ErrInvalid) when b is not such a document: malformed
// JSON, a non-string value, an unknown member (a misspelt end_date must not pass silently), or
// no "people" array.
func ParseJSON(b []byte) (Feed, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var doc jsonFeed
	if err := dec.Decode(&doc); err != nil {
		return Feed{}, fmt.Errorf("lifecycle: feed JSON: %w: %w", err, directory.ErrInvalid)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return Feed{}, fmt.Errorf("lifecycle: feed JSON: unexpected data after the document: %w", directory.ErrInvalid)
	}
	if doc.People == nil {
		return Feed{}, fmt.Errorf(`lifecycle: feed JSON: no "people" array: %w`, directory.ErrInvalid)
	}
	v := newValidator("person", len(*doc.People))
	for i, p := range *doc.People {
		vals := [numFields]string{
			p.EmployeeID, p.GivenName, p.FamilyName, p.Email, p.Department, p.Title, p.ManagerID,
			p.Location, p.EmploymentType, p.StartDate, p.EndDate, p.Status, p.CostCenter,
		}
		v.row(i+1, &vals)
	}
	return v.feed(), nil
}

// chunk is how many people a block of validator.blocks holds. A CSV stream does not say how
// many rows it has; fixed blocks, copied once into People at the end, avoid re-copying an
// ever-growing slice of Person.
const chunk = 4096

// validator collects the rows of one feed and their problems. Row i (counting every row that
// reached row) is person(i), bad[i] and hasMgr[i].
type validator struct {
	unit     string     // "line" or "person": how messages refer to a row
	blocks   [][]Person // each of capacity chunk
	n        int        // rows so far
	bad      []bool     // the row has a problem
	hasMgr   []bool     // the row names a manager_id that passed its own checks (it may name nobody)
	problems []Problem
}

func newValidator(unit string, n int) *validator {
	return &validator{unit: unit, bad: make([]bool, 0, n), hasMgr: make([]bool, 0, n)}
}

func (v *validator) person(i int) *Person { return &v.blocks[i/chunk][i%chunk] }

func (v *validator) add(p *Person, bad, hasMgr bool) {
	if v.n%chunk == 0 {
		v.blocks = append(v.blocks, make([]Person, 0, chunk))
	}
	last := &v.blocks[len(v.blocks)-1]
	*last = append(*last, *p)
	v.n++
	v.bad = append(v.bad, bad)
	v.hasMgr = append(v.hasMgr, hasMgr)
}

func (v *validator) problem(line int, id, field, msg string) {
	v.problems = append(v.problems, Problem{Line: line, EmployeeID: id, Field: field, Message: msg})
}

// row validates one row's values, indexed by the f* constants, and records it.
func (v *validator) row(line int, vals *[numFields]string) {
	before := len(v.problems)
	var p Person
	p.Line = line
	id, idOK := v.id(line, "", fEmployeeID, vals[fEmployeeID])
	if idOK {
		p.EmployeeID = id
	}
	id = p.EmployeeID // "" when invalid: problems then name no employee_id
	p.GivenName = v.required(line, id, fGivenName, v.text(line, id, vals, fGivenName, true))
	p.FamilyName = v.required(line, id, fFamilyName, v.text(line, id, vals, fFamilyName, true))
	p.Email = v.email(line, id, v.text(line, id, vals, fEmail, false))
	p.Department = v.text(line, id, vals, fDepartment, true)
	p.Title = v.text(line, id, vals, fTitle, true)
	mgr, mgrOK := v.id(line, id, fManagerID, vals[fManagerID])
	p.ManagerID = mgr
	p.Location = v.text(line, id, vals, fLocation, true)
	p.EmploymentType = strings.ToLower(v.text(line, id, vals, fEmploymentType, false))
	p.StartDate = v.day(line, id, fStartDate, v.text(line, id, vals, fStartDate, false))
	p.EndDate = v.day(line, id, fEndDate, v.text(line, id, vals, fEndDate, false))
	if !p.EndDate.IsZero() && p.EndDate.Before(p.StartDate) {
		v.problem(line, id, "end_date", fmt.Sprintf("%s is before start_date %s",
			p.EndDate.Format(time.DateOnly), p.StartDate.Format(time.DateOnly)))
	}
	p.Status = v.status(line, id, strings.ToLower(v.text(line, id, vals, fStatus, false)))
	p.CostCenter = v.text(line, id, vals, fCostCenter, true)
	v.add(&p, len(v.problems) > before, mgrOK && mgr != "")
}

// text checks a free-text field with cleanField and records its problem, if any.
func (v *validator) text(line int, id string, vals *[numFields]string, f int, formula bool) string {
	s, msg := cleanField(vals[f], fieldLimit(f), formula)
	if msg != "" {
		v.problem(line, id, fieldNames[f], msg)
	}
	return s
}

// id checks an employee_id or manager_id. ok is false when the value has a problem; an empty
// employee_id is a problem, an empty manager_id is not (ok is then true and the id "").
func (v *validator) id(line int, rowID string, f int, raw string) (id string, ok bool) {
	s, msg := cleanField(raw, maxFeedID, false)
	if msg == "" && s == "" && f == fEmployeeID {
		msg = "is required"
	}
	if msg != "" {
		if f == fEmployeeID {
			rowID = ""
		}
		v.problem(line, rowID, fieldNames[f], msg)
		return "", false
	}
	return s, true
}

func (v *validator) required(line int, id string, f int, s string) string {
	if s == "" && !v.hasProblem(line, fieldNames[f]) {
		v.problem(line, id, fieldNames[f], "is required")
	}
	return s
}

// hasProblem reports whether the current row already has a problem on field.
func (v *validator) hasProblem(line int, field string) bool {
	for i := len(v.problems) - 1; i >= 0 && v.problems[i].Line == line; i-- {
		if v.problems[i].Field == field {
			return true
		}
	}
	return false
}

func (v *validator) email(line int, id, s string) string {
	if s == "" || v.hasProblem(line, "email") {
		return s
	}
	if simpleAddress(s) {
		return s
	}
	a, err := mail.ParseAddress(s)
	switch {
	case err != nil:
		v.problem(line, id, "email", fmt.Sprintf("is not a valid email address: %s", quoteShort(s)))
	case a.Name != "" || a.Address != s:
		v.problem(line, id, "email", fmt.Sprintf("must be a bare address such as name@example.com, without a display name, angle brackets or quotes: %s", quoteShort(s)))
	}
	return s
}

func (v *validator) day(line int, id string, f int, s string) time.Time {
	if v.hasProblem(line, fieldNames[f]) {
		return time.Time{}
	}
	if s == "" {
		if requiredField(f) {
			v.problem(line, id, fieldNames[f], "is required")
		}
		return time.Time{}
	}
	t, ok := parseDay(s)
	if !ok {
		v.problem(line, id, fieldNames[f], fmt.Sprintf("is not a date in the form YYYY-MM-DD: %s", quoteShort(s)))
	}
	return t
}

func (v *validator) status(line int, id, s string) string {
	if v.hasProblem(line, "status") {
		return s
	}
	switch s {
	case "active", "terminated", "leave":
		return s
	case "":
		v.problem(line, id, "status", "is required: active, terminated or leave")
	default:
		v.problem(line, id, "status", fmt.Sprintf("must be active, terminated or leave, not %s", quoteShort(s)))
	}
	return s
}

// feed runs the cross-row checks and returns the valid people in feed order with every problem,
// ordered by line.
func (v *validator) feed() Feed {
	v.crossCheck()
	var f Feed
	valid := 0
	for _, bad := range v.bad {
		if !bad {
			valid++
		}
	}
	f.People = make([]Person, 0, valid)
	for i := range v.n {
		if !v.bad[i] {
			f.People = append(f.People, *v.person(i))
		}
	}
	v.blocks = nil
	slices.SortStableFunc(v.problems, func(a, b Problem) int { return a.Line - b.Line })
	f.Problems = v.problems
	return f
}

// crossCheck finds duplicate employee_ids, managers who are not in the feed and management
// cycles. Only the row at fault becomes a problem: a report whose manager is invalid stays valid.
func (v *validator) crossCheck() {
	first := make(map[string]int, v.n) // employee_id -> index of its first row
	dup := make([]bool, v.n)
	for i := range v.n {
		id := v.person(i).EmployeeID
		if id == "" {
			continue
		}
		if j, seen := first[id]; seen {
			v.fail(i, "employee_id", fmt.Sprintf("duplicate of %s %d", v.unit, v.person(j).Line))
			dup[i] = true
			continue
		}
		first[id] = i
	}
	// next[i] is the row of i's manager, or -1.
	next := make([]int32, v.n)
	for i := range v.n {
		p := v.person(i)
		next[i] = -1
		if !v.hasMgr[i] {
			continue
		}
		j, ok := first[p.ManagerID]
		if !ok {
			v.fail(i, "manager_id", fmt.Sprintf("no worker with employee_id %s in this feed", p.ManagerID))
			continue
		}
		if !dup[i] && p.EmployeeID != "" {
			next[i] = int32(j)
		}
	}
	v.findCycles(next)
}

// findCycles marks every row on a management cycle. The manager graph has at most one edge out
// of each row, so one walk per row, never revisiting a finished row, finds them all in O(n).
func (v *validator) findCycles(next []int32) {
	const (
		unseen = -1
		done   = -2
	)
	state := make([]int32, len(next)) // unseen, done, or the position on the current walk
	for i := range state {
		state[i] = unseen
	}
	var path []int32
	for start := range next {
		if state[start] != unseen {
			continue
		}
		path = path[:0]
		cur := int32(start)
		for cur >= 0 && state[cur] == unseen {
			state[cur] = int32(len(path))
			path = append(path, cur)
			cur = next[cur]
		}
		if cur >= 0 && state[cur] >= 0 { // back on this walk: path[state[cur]:] is a cycle
			cycle := path[state[cur]:]
			for k := range cycle {
				v.fail(int(cycle[k]), "manager_id", "management cycle: "+v.cyclePath(cycle, k))
			}
		}
		for _, n := range path {
			state[n] = done
		}
	}
}

// cyclePath spells a cycle starting at position k: "A -> B -> A", shortened when long.
func (v *validator) cyclePath(cycle []int32, k int) string {
	const show = 8
	var b strings.Builder
	for n := range min(len(cycle), show) {
		b.WriteString(v.person(int(cycle[(k+n)%len(cycle)])).EmployeeID)
		b.WriteString(" -> ")
	}
	if len(cycle) > show {
		fmt.Fprintf(&b, "... (%d workers) -> ", len(cycle))
	}
	b.WriteString(v.person(int(cycle[k])).EmployeeID)
	return b.String()
}

// fail records a cross-row problem against row i and takes the row out of People.
func (v *validator) fail(i int, field, msg string) {
	v.bad[i] = true
	p := v.person(i)
	v.problem(p.Line, p.EmployeeID, field, msg)
}

// cleanField checks one value: valid UTF-8, no control or invisible formatting characters, at
// most max characters and, when formula is set, not starting like a spreadsheet formula. It
// returns the value in NFC with surrounding spaces removed, or a problem message.
func cleanField(s string, max int, formula bool) (string, string) {
	if formula && s != "" && formulaStart(s[0]) {
		return s, "looks like a spreadsheet formula"
	}
	ascii := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= utf8.RuneSelf {
			ascii = false
			break
		}
		if c < 0x20 || c == 0x7f {
			return s, fmt.Sprintf("contains a control character (%U)", rune(c))
		}
	}
	n := len(s)
	if !ascii {
		if !utf8.ValidString(s) {
			return s, "is not valid UTF-8"
		}
		for _, r := range s {
			if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' ||
				unicode.Is(unicode.Cf, r) && r != '\u200c' && r != '\u200d' {
				return s, fmt.Sprintf("contains a control or invisible formatting character (%U)", r)
			}
		}
		s = norm.NFC.String(s) // returns s itself when it is already NFC
	}
	s = strings.TrimSpace(s)
	if formula && s != "" && formulaStart(s[0]) {
		return s, "looks like a spreadsheet formula"
	}
	if n = len(s); !ascii {
		n = utf8.RuneCountInString(s)
	}
	if n > max {
		return s, fmt.Sprintf("is %d characters long; at most %d are allowed", n, max)
	}
	return s, ""
}

// formulaStart reports whether a value beginning with c would be taken for a formula by a
// spreadsheet that opens an export of it.
func formulaStart(c byte) bool {
	switch c {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

// parseDay parses an ISO 8601 calendar day, YYYY-MM-DD, to UTC midnight. It refuses days that
// do not exist (2026-02-30, 2026-13-45).
func parseDay(s string) (time.Time, bool) {
	if len(s) != 10 || s[4] != '-' || s[7] != '-' {
		return time.Time{}, false
	}
	num := func(t string) int {
		n := 0
		for i := 0; i < len(t); i++ {
			if t[i] < '0' || t[i] > '9' {
				return -1
			}
			n = n*10 + int(t[i]-'0')
		}
		return n
	}
	y, m, d := num(s[:4]), num(s[5:7]), num(s[8:])
	if y < 1 || m < 1 || m > 12 || d < 1 {
		return time.Time{}, false
	}
	t := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
	if t.Day() != d {
		return time.Time{}, false
	}
	return t, true
}

// simpleAddress reports whether s is a plain dot-atom address (local@domain, ASCII, no quotes,
// comments or brackets). Every such string is a bare address that mail.ParseAddress accepts
// unchanged, so the common case skips the full parser.
func simpleAddress(s string) bool {
	local, domain, ok := strings.Cut(s, "@")
	if !ok || strings.IndexByte(domain, '@') >= 0 {
		return false
	}
	return dotAtom(local, atext) && dotAtom(domain, ldh)
}

// dotAtom reports whether s is non-empty runs of allowed bytes separated by single dots.
func dotAtom(s string, allowed func(byte) bool) bool {
	if s == "" || s[0] == '.' || s[len(s)-1] == '.' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '.' {
			if s[i-1] == '.' {
				return false
			}
			continue
		}
		if !allowed(c) {
			return false
		}
	}
	return true
}

func ldh(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-'
}

func atext(c byte) bool {
	return ldh(c) || strings.IndexByte("!#$%&'*+/=?^_`{|}~", c) >= 0
}

// quoteShort quotes a value for a message, cut to a readable length.
func quoteShort(s string) string {
	const max = 40
	if utf8.RuneCountInString(s) > max {
		return fmt.Sprintf("%q…", string([]rune(s)[:max]))
	}
	return fmt.Sprintf("%q", s)
}
