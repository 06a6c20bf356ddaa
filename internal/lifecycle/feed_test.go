package lifecycle

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/deputy-iam/deputy/internal/directory"
)

// sharedData returns the folder of the shared synthetic organisation, or skips the test when
// this checkout has no shared data next to it.
func sharedData(t testing.TB) string {
	t.Helper()
	dir := filepath.Join("..", "..", "..", "shared", "data", "org-1k")
	if _, err := os.Stat(dir); err != nil {
		t.Skipf("shared test data not found at %s (it lives next to the checkout): %v", dir, err)
	}
	return dir
}

func parseFile(t *testing.T, path string) Feed {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	feed, err := ParseCSV(f, DefaultMapping())
	if err != nil {
		t.Fatalf("ParseCSV(%s): %v", filepath.Base(path), err)
	}
	return feed
}

const header = "employee_id,given_name,family_name,email,department,title,manager_id,location,employment_type,start_date,end_date,status,cost_center\n"

// row writes a CSV line with the usual values, overridden by field=value pairs.
func row(id string, kv ...string) string {
	vals := map[string]string{
		"employee_id": id, "given_name": "Ada", "family_name": "Lovelace", "email": "ada@example.com",
		"department": "Engineering", "title": "Engineer", "location": "London",
		"employment_type": "employee", "start_date": "2020-01-02", "status": "active", "cost_center": "CC-100",
	}
	for i := 0; i+1 < len(kv); i += 2 {
		vals[kv[i]] = kv[i+1]
	}
	var b strings.Builder
	for i, n := range fieldNames {
		if i > 0 {
			b.WriteByte(',')
		}
		v := vals[n]
		if strings.ContainsAny(v, ",\"\n\r") {
			v = `"` + strings.ReplaceAll(v, `"`, `""`) + `"`
		}
		b.WriteString(v)
	}
	return b.String() + "\n"
}

// where is a problem's position: its line and field.
type where struct {
	Line  int
	Field string
}

func positions(ps []Problem) []where {
	out := make([]where, len(ps))
	for i, p := range ps {
		out[i] = where{p.Line, p.Field}
	}
	return out
}

func lines(people []Person) []int {
	out := make([]int, len(people))
	for i, p := range people {
		out[i] = p.Line
	}
	return out
}

func TestSharedDay1(t *testing.T) {
	feed := parseFile(t, filepath.Join(sharedData(t), "hr-day1.csv"))
	if len(feed.People) != 1000 || len(feed.Problems) != 0 {
		t.Fatalf("hr-day1.csv: %d people, problems %v; want 1000 people, no problems", len(feed.People), feed.Problems)
	}
	for i, p := range feed.People {
		if p.Line != i+2 {
			t.Fatalf("person %d has line %d; want %d (feed order)", i, p.Line, i+2)
		}
	}
	ceo := feed.People[0]
	want := Person{EmployeeID: "E000001", GivenName: "Alan", FamilyName: "Knuth", Email: "alan.knuth@example.com",
		Department: "Operations", Title: "Chief Executive Officer", Location: "Remote", EmploymentType: "employee",
		StartDate: time.Date(2011, 7, 18, 0, 0, 0, 0, time.UTC), Status: "active", CostCenter: "CC-120", Line: 2}
	if diff := cmp.Diff(want, ceo); diff != "" {
		t.Errorf("first person (-want +got):\n%s", diff)
	}
}

func TestSharedDay2(t *testing.T) {
	feed := parseFile(t, filepath.Join(sharedData(t), "hr-day2.csv"))
	if len(feed.Problems) != 0 {
		t.Fatalf("hr-day2.csv: problems %v; want none", feed.Problems)
	}
	if len(feed.People) <= 1000 {
		t.Errorf("hr-day2.csv: %d people; want more than day 1's 1000 (joiners)", len(feed.People))
	}
}

func TestSharedBroken(t *testing.T) {
	feed := parseFile(t, filepath.Join(sharedData(t), "hr-broken.csv"))
	var wantLines []int
	for l := 2; l <= 21; l++ {
		wantLines = append(wantLines, l)
	}
	if diff := cmp.Diff(wantLines, lines(feed.People)); diff != "" {
		t.Errorf("valid lines (-want +got):\n%s", diff)
	}
	if feed.People[0].EmployeeID != "E000001" {
		t.Errorf("first employee_id %q; the byte-order mark must not reach the first header or value", feed.People[0].EmployeeID)
	}
	want := []where{
		{22, "employee_id"}, // no employee_id
		{23, "start_date"},  // 2026-13-45
		{24, "employee_id"}, // E000006 again: line 7 is the first
		{25, "manager_id"},  // E999999
		{26, "email"},       // not-an-email
		{27, "given_name"},  // =HYPERLINK(...)
		{28, "family_name"}, // 5,000 characters
		{29, "manager_id"},  // cycle
		{30, "manager_id"},  // cycle
		{31, ""},            // three columns
	}
	if diff := cmp.Diff(want, positions(feed.Problems)); diff != "" {
		t.Errorf("problems (-want +got):\n%s\nall: %v", diff, feed.Problems)
	}
	msgs := map[int]string{}
	for _, p := range feed.Problems {
		msgs[p.Line] = p.Message
	}
	for line, sub := range map[int]string{
		24: "duplicate of line 7", 25: "no worker with employee_id E999999 in this feed",
		27: "looks like a spreadsheet formula", 29: "management cycle: E000027 -> E000028 -> E000027",
		30: "management cycle: E000028 -> E000027 -> E000028", 31: "has 3 columns; the header has 13",
	} {
		if !strings.Contains(msgs[line], sub) {
			t.Errorf("line %d: message %q; want it to contain %q", line, msgs[line], sub)
		}
	}
	for _, p := range feed.Problems {
		if len(p.Message) > 200 {
			t.Errorf("line %d: message of %d bytes; a message must not echo a huge value", p.Line, len(p.Message))
		}
	}
}

func TestParseCSVRows(t *testing.T) {
	long := strings.Repeat("x", 257)
	tests := []struct {
		name  string
		rows  string
		lines []int   // lines of the valid people
		want  []where // problems
		msg   string  // a substring of the first problem's message
	}{
		{name: "valid", rows: row("E1") + row("E2", "manager_id", "E1"), lines: []int{2, 3}},
		{name: "quoted newline counts as a line, and is a control character",
			rows:  row("E1", "title", "Chief\nEngineer") + row("E2", "start_date", "x") + row("E3"),
			lines: []int{5}, want: []where{{2, "title"}, {4, "start_date"}}},
		{name: "missing employee_id", rows: row(""), want: []where{{2, "employee_id"}}, msg: "is required"},
		{name: "employee_id too long", rows: row(strings.Repeat("E", 65)), want: []where{{2, "employee_id"}}, msg: "65 characters"},
		{name: "control character in id", rows: row("E\x011"), want: []where{{2, "employee_id"}}, msg: "control"},
		{name: "missing names", rows: row("E1", "given_name", "", "family_name", " "),
			want: []where{{2, "given_name"}, {2, "family_name"}}},
		{name: "field too long", rows: row("E1", "title", long[:129]), want: []where{{2, "title"}}, msg: "129 characters"},
		{name: "128 characters is fine", rows: row("E1", "title", long[:128]), lines: []int{2}},
		{name: "a cost center of 256 is fine", rows: row("E1", "cost_center", long[:256]), lines: []int{2}},
		{name: "a cost center of 257 is not", rows: row("E1", "cost_center", long), want: []where{{2, "cost_center"}}, msg: "257 characters"},
		{name: "control character in title", rows: row("E1", "title", "Chief\x07"), want: []where{{2, "title"}}},
		{name: "invisible formatting character", rows: row("E1", "given_name", "A\u200eda"), want: []where{{2, "given_name"}}},
		{name: "formulas", rows: row("E1", "family_name", "+cmd") + row("E2", "department", "-2") +
			row("E3", "title", "@SUM(A1)") + row("E4", "location", "\tx") + row("E5", "cost_center", "=1") +
			row("E6", "given_name", " =1"),
			want: []where{{2, "family_name"}, {3, "department"}, {4, "title"}, {5, "location"}, {6, "cost_center"}, {7, "given_name"}},
			msg:  "looks like a spreadsheet formula"},
		{name: "hyphen inside a name is fine", rows: row("E1", "family_name", "Smith-Jones"), lines: []int{2}},
		{name: "email with display name", rows: row("E1", "email", "Ada <ada@example.com>"), want: []where{{2, "email"}}, msg: "bare address"},
		{name: "email in angle brackets", rows: row("E1", "email", "<ada@example.com>"), want: []where{{2, "email"}}},
		{name: "email malformed", rows: row("E1", "email", "ada@@example.com"), want: []where{{2, "email"}}},
		{name: "email optional and plus-addressed", rows: row("E1", "email", "") + row("E2", "email", "ada+hr@mail.example.com"), lines: []int{2, 3}},
		{name: "email with Unicode", rows: row("E1", "email", "jos\u00e9@example.com"), lines: []int{2}},
		{name: "impossible dates", rows: row("E1", "start_date", "2026-02-29") + row("E2", "start_date", "2026-1-05") +
			row("E3", "end_date", "2026-13-45") + row("E4", "start_date", "02/01/2020"),
			want: []where{{2, "start_date"}, {3, "start_date"}, {4, "end_date"}, {5, "start_date"}}},
		{name: "leap day", rows: row("E1", "start_date", "2028-02-29"), lines: []int{2}},
		{name: "start_date required", rows: row("E1", "start_date", ""), want: []where{{2, "start_date"}}},
		{name: "end before start", rows: row("E1", "end_date", "2019-12-31"), want: []where{{2, "end_date"}}},
		{name: "status", rows: row("E1", "status", "Terminated") + row("E2", "status", "LEAVE") + row("E3", "status", "retired") + row("E4", "status", ""),
			lines: []int{2, 3}, want: []where{{4, "status"}, {5, "status"}}},
		{name: "duplicates name the first line", rows: row("E1") + row("E1") + row("E1"),
			lines: []int{2}, want: []where{{3, "employee_id"}, {4, "employee_id"}}, msg: "duplicate of line 2"},
		{name: "unknown manager", rows: row("E1", "manager_id", "E9"), want: []where{{2, "manager_id"}},
			msg: "no worker with employee_id E9 in this feed"},
		{name: "own manager", rows: row("E1", "manager_id", "E1"), want: []where{{2, "manager_id"}}, msg: "management cycle: E1 -> E1"},
		{name: "three-cycle, and a report into it stays valid",
			rows:  row("E1", "manager_id", "E2") + row("E2", "manager_id", "E3") + row("E3", "manager_id", "E1") + row("E4", "manager_id", "E1"),
			lines: []int{5}, want: []where{{2, "manager_id"}, {3, "manager_id"}, {4, "manager_id"}},
			msg: "management cycle: E1 -> E2 -> E3 -> E1"},
		{name: "a report of an invalid manager stays valid",
			rows: row("E1", "start_date", "nope") + row("E2", "manager_id", "E1"), lines: []int{3}, want: []where{{2, "start_date"}}},
		{name: "wrong column count", rows: "E1,Ada\n" + row("E2") + row("E3") + ",,,,,,,,,,,,,\n",
			lines: []int{3, 4}, want: []where{{2, ""}, {5, ""}}, msg: "has 2 columns; the header has 13"},
		{name: "bad quoting is a row problem", rows: "E1,Ada,Love\"lace,,,,,,,2020-01-01,,active,\n" + row("E2"),
			lines: []int{3}, want: []where{{2, ""}}, msg: "not valid CSV"},
		{name: "blank lines are skipped", rows: row("E1") + "\n\n" + row("E2"), lines: []int{2, 5}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			feed, err := ParseCSV(strings.NewReader(header+tt.rows), DefaultMapping())
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.lines, lines(feed.People), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("valid lines (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tt.want, positions(feed.Problems), cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("problems (-want +got):\n%s\nall: %v", diff, feed.Problems)
			}
			if tt.msg != "" && len(feed.Problems) > 0 && !strings.Contains(feed.Problems[0].Message, tt.msg) {
				t.Errorf("message %q; want it to contain %q", feed.Problems[0].Message, tt.msg)
			}
		})
	}
}

func TestParseCSVFormats(t *testing.T) {
	// Byte-order mark, CRLF, quoted comma and quote, decomposed Unicode, extra column, padding.
	in := "\ufeff" + strings.ReplaceAll(header, "\n", ",extra\r\n") +
		"E1 ,Jose\u0301,\"O\"\"Brien, Jr\",ada@example.com,Engineering,Engineer,,London, Contractor ,2020-01-02,2027-03-28,Active,CC-1,x\r\n"
	feed, err := ParseCSV(strings.NewReader(in), DefaultMapping())
	if err != nil {
		t.Fatal(err)
	}
	if len(feed.Problems) != 0 || len(feed.People) != 1 {
		t.Fatalf("people %v, problems %v; want one person", feed.People, feed.Problems)
	}
	want := Person{EmployeeID: "E1", GivenName: "Jos\u00e9", FamilyName: `O"Brien, Jr`, Email: "ada@example.com",
		Department: "Engineering", Title: "Engineer", Location: "London", EmploymentType: "contractor",
		StartDate: time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), EndDate: time.Date(2027, 3, 28, 0, 0, 0, 0, time.UTC),
		Status: "active", CostCenter: "CC-1", Line: 2}
	if diff := cmp.Diff(want, feed.People[0]); diff != "" {
		t.Errorf("person (-want +got):\n%s", diff)
	}
}

func TestParseCSVHeaderErrors(t *testing.T) {
	tests := []struct {
		name, in string
		m        Mapping
		want     string
	}{
		{"empty", "", DefaultMapping(), "no header"},
		{"missing column", strings.Replace(header, ",cost_center", "", 1), DefaultMapping(), `"cost_center"`},
		{"two missing columns", strings.Replace(strings.Replace(header, ",cost_center", "", 1), ",title", "", 1), DefaultMapping(), `"title" (for title), "cost_center"`},
		{"ambiguous column", strings.Replace(header, "\n", ",Title\n", 1), DefaultMapping(), `two columns are named "title"`},
		{"mapped header absent", header, Mapping{"employee_id": "Personnel Number", "given_name": "given_name",
			"family_name": "family_name", "start_date": "start_date", "status": "status"}, `"Personnel Number"`},
		{"unknown field", header, Mapping{"employee_id": "employee_id", "shoe_size": "x"}, `unknown field "shoe_size"`},
		{"required unmapped", header, Mapping{"employee_id": "employee_id"}, "required field"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if in != "" {
				in += row("E1")
			}
			_, err := ParseCSV(strings.NewReader(in), tt.m)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("err = %v; want one containing %q", err, tt.want)
			}
			if !errors.Is(err, directory.ErrInvalid) {
				t.Errorf("err = %v; want it to match directory.ErrInvalid", err)
			}
		})
	}
}

type failingReader struct{}

func (failingReader) Read([]byte) (int, error) { return 0, errors.New("disk on fire") }

func TestParseCSVReadError(t *testing.T) {
	_, err := ParseCSV(failingReader{}, DefaultMapping())
	if err == nil || !strings.Contains(err.Error(), "disk on fire") || errors.Is(err, directory.ErrInvalid) {
		t.Fatalf("err = %v; want the stream's error, not an invalid-input error", err)
	}
}

func TestParseMapping(t *testing.T) {
	m, err := ParseMapping(" employee_id = Personnel Number , cost_center= ,email=Mail")
	if err != nil {
		t.Fatal(err)
	}
	want := DefaultMapping()
	want["employee_id"], want["cost_center"], want["email"] = "Personnel Number", "", "Mail"
	if diff := cmp.Diff(want, m); diff != "" {
		t.Errorf("mapping (-want +got):\n%s", diff)
	}
	in := "Personnel Number,given_name,family_name,MAIL,department,title,manager_id,location,employment_type,start_date,end_date,status\n" +
		"P-7,Ada,Lovelace,ada@example.com,,,,,,2020-01-02,,active\n"
	feed, err := ParseCSV(strings.NewReader(in), m)
	if err != nil {
		t.Fatal(err)
	}
	if len(feed.Problems) != 0 || len(feed.People) != 1 || feed.People[0].EmployeeID != "P-7" || feed.People[0].Email != "ada@example.com" {
		t.Errorf("feed %+v; want P-7 read through the mapping", feed)
	}
	if m, err := ParseMapping(""); err != nil || !cmp.Equal(m, DefaultMapping()) {
		t.Errorf(`ParseMapping("") = %v, %v; want the default`, m, err)
	}
	for _, bad := range []string{"shoe_size=x", "email", "email=a,email=b", "employee_id=", "email=title", "Email=mail"} {
		if _, err := ParseMapping(bad); err == nil || !errors.Is(err, directory.ErrInvalid) {
			t.Errorf("ParseMapping(%q) = %v; want an invalid-input error", bad, err)
		}
	}
}

func TestParseJSON(t *testing.T) {
	doc := `{"people": [
		{"employee_id": "E1", "given_name": "Ada", "family_name": "Lovelace", "start_date": "2020-01-02", "end_date": "2027-01-31", "status": "Active", "email": "ada@example.com"},
		{"employee_id": "E2", "given_name": "Alan", "family_name": "Turing", "start_date": "2020-13-02", "status": "active"},
		{"employee_id": "E1", "given_name": "Grace", "family_name": "Hopper", "start_date": "2020-01-02", "status": "active"},
		{"employee_id": "E3", "given_name": "=cmd", "family_name": "Hopper", "start_date": "2020-01-02", "status": "active", "manager_id": "E1"}
	]}`
	feed, err := ParseJSON([]byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	want := []Person{{EmployeeID: "E1", GivenName: "Ada", FamilyName: "Lovelace", Email: "ada@example.com", Status: "active",
		StartDate: time.Date(2020, 1, 2, 0, 0, 0, 0, time.UTC), EndDate: time.Date(2027, 1, 31, 0, 0, 0, 0, time.UTC), Line: 1}}
	if diff := cmp.Diff(want, feed.People); diff != "" {
		t.Errorf("people (-want +got):\n%s", diff)
	}
	wantProblems := []where{{2, "start_date"}, {3, "employee_id"}, {4, "given_name"}}
	if diff := cmp.Diff(wantProblems, positions(feed.Problems)); diff != "" {
		t.Errorf("problems (-want +got):\n%s", diff)
	}
	if len(feed.Problems) == 3 && feed.Problems[1].Message != "duplicate of person 1" {
		t.Errorf("duplicate message %q; want %q", feed.Problems[1].Message, "duplicate of person 1")
	}
	for _, bad := range []string{``, `[]`, `{}`, `{"people": null}`, `{"people": [{"employee_id": 7}]}`,
		`{"people": [{"employee_id": "E1", "end_dat": "2020-01-01"}]}`, `{"people": []} {}`} {
		if _, err := ParseJSON([]byte(bad)); err == nil || !errors.Is(err, directory.ErrInvalid) {
			t.Errorf("ParseJSON(%q) = %v; want an invalid-input error", bad, err)
		}
	}
	if feed, err := ParseJSON([]byte(`{"people": []}`)); err != nil || len(feed.People) != 0 {
		t.Errorf("empty people: %v, %v", feed, err)
	}
}

// TestParseJSONMatchesCSV checks that a JSON push and a CSV file with the same people give the
// same feed.
func TestParseJSONMatchesCSV(t *testing.T) {
	csvFeed := parseFile(t, filepath.Join(sharedData(t), "hr-day2.csv"))
	var b bytes.Buffer
	b.WriteString(`{"people": [`)
	for i, p := range csvFeed.People {
		if i > 0 {
			b.WriteByte(',')
		}
		end := ""
		if !p.EndDate.IsZero() {
			end = p.EndDate.Format(time.DateOnly)
		}
		fmt.Fprintf(&b, `{"employee_id":%q,"given_name":%q,"family_name":%q,"email":%q,"department":%q,"title":%q,`+
			`"manager_id":%q,"location":%q,"employment_type":%q,"start_date":%q,"end_date":%q,"status":%q,"cost_center":%q}`,
			p.EmployeeID, p.GivenName, p.FamilyName, p.Email, p.Department, p.Title, p.ManagerID, p.Location,
			p.EmploymentType, p.StartDate.Format(time.DateOnly), end, p.Status, p.CostCenter)
	}
	b.WriteString(`]}`)
	jsonFeed, err := ParseJSON(b.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	for i := range csvFeed.People {
		csvFeed.People[i].Line = i + 1 // the CSV header shifts lines by one
	}
	if diff := cmp.Diff(csvFeed, jsonFeed); diff != "" {
		t.Errorf("JSON feed differs from CSV feed (-csv +json):\n%s", diff)
	}
}

// bigCSV synthesizes a valid feed of n people: a management tree, Unicode and quoted names.
func bigCSV(n int) []byte {
	givens := []string{"Ada", "Olúwadámilọ́lá", "Søren", "Zoë", "Łukasz", "José", "Mei", "Grace"}
	families := []string{"Lovelace", "García Márquez", "O'Brien", "van der Berg", "Smith, Jr", "Müller", "Ó Súilleabháin"}
	var b bytes.Buffer
	b.Grow(n * 150)
	b.WriteString("\ufeff" + strings.ReplaceAll(header, "\n", "\r\n"))
	for i := 1; i <= n; i++ {
		g, f := givens[i%len(givens)], families[i%len(families)]
		mgr, end, typ := "", "", "employee"
		if i > 1 {
			mgr = fmt.Sprintf("E%07d", (i+8)/10) // ten reports each
		}
		if i%12 == 0 {
			end, typ = "2027-06-30", "contractor"
		}
		fmt.Fprintf(&b, "E%07d,%s,\"%s\",%s.%d@example.com,Engineering,Senior Engineer,%s,London,%s,20%02d-%02d-%02d,%s,active,CC-%03d\r\n",
			i, g, f, strings.ToLower(g[:1]), i, mgr, typ, 10+i%16, 1+i%12, 1+i%28, end, 100+i%40)
	}
	return b.Bytes()
}

func TestParseCSVLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("100,000-row feed skipped in -short mode")
	}
	data := bigCSV(100_000)
	start := time.Now()
	feed, err := ParseCSV(bytes.NewReader(data), DefaultMapping())
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("parsed and validated 100,000 rows in %v", time.Since(start))
	if len(feed.People) != 100_000 || len(feed.Problems) != 0 {
		t.Fatalf("%d people, %d problems (first %v); want 100000 and none", len(feed.People), len(feed.Problems), feed.Problems[:min(3, len(feed.Problems))])
	}
}

func BenchmarkParseCSV100k(b *testing.B) {
	data := bigCSV(100_000)
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		feed, err := ParseCSV(bytes.NewReader(data), DefaultMapping())
		if err != nil || len(feed.People) != 100_000 {
			b.Fatalf("%d people, %d problems, err %v", len(feed.People), len(feed.Problems), err)
		}
	}
}
