package approval

import (
	"bytes"
	"encoding/json"
	"fmt"

	"sigs.k8s.io/yaml"
)

// policyFile is a policy file: YAML (or JSON, which is YAML too) holding the whole set.
type policyFile struct {
	Policies []Policy `json:"policies"`
}

// ParseFile reads a policy file: a document with a "policies" list, in YAML or JSON, whose
// fields are the API's. Unknown fields are errors, so that a typo does not silently drop a
// condition. Each policy is checked (Normalize); names must be unique.
func ParseFile(b []byte) ([]Policy, error) {
	j, err := yaml.YAMLToJSON(b)
	if err != nil {
		return nil, fmt.Errorf("approval policy file: %w", err)
	}
	dec := json.NewDecoder(bytes.NewReader(j))
	dec.DisallowUnknownFields()
	var f policyFile
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("approval policy file: %w", err)
	}
	seen := map[string]bool{}
	for i := range f.Policies {
		p := &f.Policies[i]
		if err := p.Normalize(); err != nil {
			return nil, fmt.Errorf("approval policy file: policy %d (%s): %w", i+1, p.Name, err)
		}
		if seen[p.Name] {
			return nil, fmt.Errorf("approval policy file: policy %d: the name %q is used twice", i+1, p.Name)
		}
		seen[p.Name] = true
	}
	return f.Policies, nil
}
