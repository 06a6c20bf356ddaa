package demo

import (
	"reflect"
	"testing"

	"github.com/deputy-iam/deputy/internal/delegation"
)

func TestBuildIsDeterministicAndOrdered(t *testing.T) {
	a, sa := build(Options{People: 300, Seed: 1})
	b, sb := build(Options{People: 300, Seed: 1})
	if !reflect.DeepEqual(a, b) || sa != sb {
		t.Fatal("the same size and seed gave different organisations")
	}
	c, _ := build(Options{People: 300, Seed: 2})
	if reflect.DeepEqual(a, c) {
		t.Error("another seed gave the same organisation")
	}
	if sa.Users != 300 {
		t.Errorf("%d users, want 300", sa.Users)
	}
	// Every manager is created before their reports, and usernames are unique.
	seen := map[string]bool{}
	for _, op := range a[1] {
		if op.Action != delegation.UserCreate {
			t.Fatalf("stage 2 holds %s", op.Action)
		}
		u := op.User
		if u.Manager != "" && !seen[u.Manager] {
			t.Errorf("%s comes before their manager %s", u.Username, u.Manager)
		}
		if seen[u.Username] {
			t.Errorf("username %s used twice", u.Username)
		}
		seen[u.Username] = true
		if err := u.Normalize(); err != nil {
			t.Errorf("user %s is invalid: %v", u.Username, err)
		}
	}
}

func TestASCIIName(t *testing.T) {
	for in, want := range map[string]string{"Zoë": "zoe", "Łukasz": "lukasz", "Søren": "soren", "O'Neill": "oneill",
		"García Márquez": "garciamarquez", "Olúwadámilọ́lá": "oluwadamilola"} {
		if got := asciiName(in); got != want {
			t.Errorf("asciiName(%q) = %q, want %q", in, got, want)
		}
	}
}
