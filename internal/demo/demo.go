// Package demo builds Deputy's demo organisation: OUs per department under corp, people with
// their managers, groups (one nested into another), service accounts, all as ops submitted
// through the change pipeline, so the demo's audit trail is as real as any other. The same
// size and seed always give the same organisation.
package demo

import (
	"context"
	"fmt"
	"math/rand/v2"
	"strings"
	"unicode"

	"golang.org/x/text/unicode/norm"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/delegation"
	"github.com/deputy-iam/deputy/internal/directory"
)

// Options size the organisation.
type Options struct {
	People int    // how many people, CEO and department heads included (at least 20)
	Seed   uint64 // the random seed; the same seed gives the same organisation
	Batch  int    // ops per transaction (default 1000)
}

// department is one department of the organisation.
type department struct {
	name, slug string
	weight     int
	titles     []string
	sub        []string // sub-OUs people are spread over
}

var departments = []department{
	{"Sales", "sales", 18, []string{"Account Executive", "Sales Development Representative", "Senior Account Executive"}, []string{"emea", "americas"}},
	{"Engineering", "engineering", 22, []string{"Software Engineer", "Senior Software Engineer", "Site Reliability Engineer"}, nil},
	{"Finance", "finance", 8, []string{"Accountant", "Financial Analyst", "Controller"}, nil},
	{"HR", "hr", 6, []string{"HR Partner", "Recruiter", "Payroll Specialist"}, nil},
	{"Marketing", "marketing", 10, []string{"Marketing Specialist", "Content Strategist", "Designer"}, nil},
	{"Operations", "operations", 10, []string{"Operations Analyst", "Logistics Coordinator", "Facilities Coordinator"}, nil},
	{"Legal", "legal", 4, []string{"Counsel", "Paralegal", "Compliance Officer"}, nil},
	{"IT", "it", 8, []string{"Helpdesk Technician", "Systems Administrator", "Network Engineer"}, nil},
	{"Support", "support", 14, []string{"Support Agent", "Senior Support Agent", "Support Specialist"}, nil},
}

var (
	givenNames = []string{"Ada", "Alan", "Grace", "Linus", "Margaret", "Dennis", "Barbara", "Ken", "Frances", "Edsger",
		"Radia", "Tim", "Hedy", "Vint", "Katherine", "John", "Annie", "Donald", "Shafi", "Leslie", "Sophie", "Niklaus",
		"Joan", "Bjarne", "Karen", "Guido", "Lynn", "James", "Mary", "Robert", "Elena", "Tomás", "Zoë", "Søren",
		"Aiko", "Chidi", "Priya", "Mateo", "Yara", "Olúwadámilọ́lá", "Łukasz", "Ines", "Hannah", "Omar", "Mei", "Noah"}
	familyNames = []string{"Lovelace", "Turing", "Hopper", "Torvalds", "Hamilton", "Ritchie", "Liskov", "Thompson",
		"Allen", "Dijkstra", "Perlman", "Berners-Lee", "Lamarr", "Cerf", "Johnson", "McCarthy", "Easley", "Knuth",
		"Goldwasser", "Lamport", "Wilson", "Wirth", "Clarke", "Stroustrup", "Spärck Jones", "van Rossum", "Conway",
		"Gosling", "Keller", "Metcalfe", "García Márquez", "O'Neill", "Nakamura", "Okafor", "Sharma", "Silva",
		"Haddad", "Müller", "Kowalski", "Chen", "Novak", "Jensen", "Dubois", "Rossi", "Ivanova", "Andersen"}
	locations = []string{"Berlin", "London", "New York", "Singapore", "Remote", "São Paulo", "Toronto"}
)

// person is one generated person before submission.
type person struct {
	in      directory.UserInput
	dept    *department
	manager bool
}

// Stats counts what Seed created.
type Stats struct {
	OUs, Users, Groups, Memberships, ServiceAccounts, Ops int
}

// Seed submits the organisation's ops through p as actor, in batches. Nothing is created
// outside the pipeline.
func Seed(ctx context.Context, p *change.Pipeline, actor delegation.Actor, meta change.Meta, opts Options) (Stats, error) {
	if opts.People < 20 {
		opts.People = 20
	}
	if opts.Batch <= 0 {
		opts.Batch = 1000
	}
	stages, stats := build(opts)
	for _, ops := range stages {
		for start := 0; start < len(ops); start += opts.Batch {
			batch := ops[start:min(start+opts.Batch, len(ops))]
			if _, err := p.SubmitBatch(ctx, actor, meta, batch); err != nil {
				return stats, fmt.Errorf("demo: seed: %w", err)
			}
		}
	}
	return stats, nil
}

// build returns the organisation as stages of ops, each stage depending only on earlier ones.
func build(opts Options) ([][]change.Op, Stats) {
	rng := rand.New(rand.NewPCG(opts.Seed, opts.Seed^0x9e3779b97f4a7c15))
	var st Stats

	ous := []change.Op{ouOp("corp", "/")}
	for i := range departments {
		d := &departments[i]
		ous = append(ous, ouOp(d.slug, "corp"))
		for _, s := range d.sub {
			ous = append(ous, ouOp(s, "corp/"+d.slug))
		}
	}
	st.OUs = len(ous)

	people := generatePeople(rng, opts.People)
	users := make([]change.Op, len(people))
	for i := range people {
		users[i] = change.Op{Action: delegation.UserCreate, User: &people[i].in}
	}
	st.Users = len(users)

	groups, members := groupOps(people)
	st.Groups, st.Memberships = len(groups), len(members)

	heads := map[string]string{}
	for _, p := range people {
		if p.dept != nil && p.in.Manager == people[0].in.Username {
			heads[p.dept.slug] = p.in.Username
		}
	}
	sas := []change.Op{
		saOp("ci-deployer", "Deploys builds to production", "corp/engineering", heads["engineering"]),
		saOp("crm-sync", "Synchronises accounts with the CRM", "corp/sales", heads["sales"]),
		saOp("backup-agent", "Runs the nightly backups", "corp/it", heads["it"]),
		saOp("hr-feed", "Pushes the HR system's daily export", "corp/hr", heads["hr"]),
	}
	st.ServiceAccounts = len(sas)
	st.Ops = st.OUs + st.Users + st.Groups + st.Memberships + st.ServiceAccounts
	return [][]change.Op{ous, users, groups, members, sas}, st
}

func ouOp(name, parent string) change.Op {
	return change.Op{Action: delegation.OUCreate, OU: &directory.OUInput{Name: name, Parent: parent}}
}

func saOp(name, description, ou, owner string) change.Op {
	return change.Op{Action: delegation.SACreate, Service: &directory.ServiceAccountInput{
		Name: name, Description: description, OU: ou, Owners: []string{owner}}}
}

// generatePeople makes n people: a CEO, a head per department, managers with about eight
// reports each, and staff. Managers come before their reports.
func generatePeople(rng *rand.Rand, n int) []person {
	used := map[string]int{}
	var seq int
	newPerson := func(d *department, title, manager, ou string) person {
		seq++
		given := givenNames[rng.IntN(len(givenNames))]
		family := familyNames[rng.IntN(len(familyNames))]
		base := asciiName(given) + "." + asciiName(family)
		used[base]++
		username := base
		if used[base] > 1 {
			username = fmt.Sprintf("%s%d", base, used[base])
		}
		in := directory.UserInput{Username: username, GivenName: given, FamilyName: family,
			Email: username + "@example.com", EmployeeID: fmt.Sprintf("E%06d", seq), Title: title,
			Manager: manager, Location: locations[rng.IntN(len(locations))], EmploymentType: "employee", OU: ou,
			Attributes: map[string]string{"cost_center": fmt.Sprintf("CC-%03d", 100+rng.IntN(40))}}
		if d != nil {
			in.Department = d.name
		}
		if rng.IntN(10) == 0 {
			in.EmploymentType = "contractor"
		}
		return person{in: in, dept: d}
	}
	ceo := newPerson(nil, "Chief Executive Officer", "", "corp")
	ceo.in.Department = "Operations"
	people := []person{ceo}

	totalWeight := 0
	for _, d := range departments {
		totalWeight += d.weight
	}
	staffLeft := n - 1
	for i := range departments {
		d := &departments[i]
		size := max(2, (n-1)*d.weight/totalWeight)
		if i == len(departments)-1 {
			size = max(2, staffLeft)
		}
		staffLeft -= size
		ouFor := func(k int) string {
			if len(d.sub) == 0 {
				return "corp/" + d.slug
			}
			return "corp/" + d.slug + "/" + d.sub[k%len(d.sub)]
		}
		head := newPerson(d, "Head of "+d.name, ceo.in.Username, "corp/"+d.slug)
		head.manager = true
		people = append(people, head)
		rest := size - 1
		nManagers := max(1, rest/9)
		managers := make([]string, 0, nManagers)
		for k := 0; k < nManagers; k++ {
			m := newPerson(d, d.name+" Manager", head.in.Username, ouFor(k))
			m.manager = true
			people = append(people, m)
			managers = append(managers, m.in.Username)
		}
		for k := 0; k < rest-nManagers; k++ {
			people = append(people, newPerson(d, d.titles[rng.IntN(len(d.titles))], managers[k%nManagers], ouFor(k%nManagers)))
		}
	}
	return people
}

// groupOps returns the groups and their memberships: one group per department (owned by its
// head), all-staff nesting them, managers, and a few application groups.
func groupOps(people []person) (groups, members []change.Op) {
	group := func(name, description, ou string, owners ...string) {
		var o []string
		for _, x := range owners {
			if x != "" {
				o = append(o, x)
			}
		}
		groups = append(groups, change.Op{Action: delegation.GroupCreate, Group: &directory.GroupInput{
			Name: name, Description: description, OU: ou, Owners: o}})
	}
	add := func(g, member string) {
		members = append(members, change.Op{Action: delegation.GroupAddMember, Target: directory.Ref{Kind: directory.KindGroup, Name: g},
			Member: member})
	}
	ceo := people[0].in.Username
	heads := map[string]string{}
	for _, p := range people[1:] {
		if p.in.Manager == ceo {
			heads[p.dept.slug] = p.in.Username
		}
	}
	group("all-staff", "Everyone in the organisation", "corp", ceo)
	group("managers", "People who manage others", "corp", heads["hr"])
	group("crm-users", "Access to the CRM", "corp/sales", heads["sales"])
	group("vpn-users", "Remote access", "corp/it", heads["it"])
	group("finance-approvers", "Approve payments", "corp/finance", heads["finance"])
	for _, d := range departments {
		group(d.slug+"-all", "Everyone in "+d.name, "corp/"+d.slug, heads[d.slug])
		add("all-staff", "group:"+d.slug+"-all")
	}
	add("all-staff", "user:"+ceo)
	for _, p := range people[1:] {
		add(p.dept.slug+"-all", "user:"+p.in.Username)
		if p.manager {
			add("managers", "user:"+p.in.Username)
			if p.dept.slug == "finance" {
				add("finance-approvers", "user:"+p.in.Username)
			}
		}
		switch {
		case p.dept.slug == "sales":
			add("crm-users", "user:"+p.in.Username)
		case p.in.Location == "Remote":
			add("vpn-users", "user:"+p.in.Username)
		}
	}
	return groups, members
}

// asciiName makes a name usable in a username: accents dropped, letters lower-cased, anything
// else removed.
func asciiName(s string) string {
	var b strings.Builder
	for _, r := range norm.NFD.String(s) {
		switch {
		case r == 'ł' || r == 'Ł':
			b.WriteRune('l')
		case r == 'ø' || r == 'Ø':
			b.WriteRune('o')
		case r < unicode.MaxASCII && (unicode.IsLetter(r) || unicode.IsDigit(r)):
			b.WriteRune(unicode.ToLower(r))
		}
	}
	return b.String()
}
