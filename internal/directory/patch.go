package directory

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"
)

// Patch is an RFC 7396 JSON merge patch: each key replaces a field, null clears it, and an
// object value merges into an object field (custom attributes).
type Patch map[string]json.RawMessage

// PatchOK marks a field a merge patch may change; any other value in PatchRules is the reason
// the field is refused.
const PatchOK = ""

// PatchRules maps each field of an object's input form to PatchOK or a refusal message.
type PatchRules map[string]string

// ApplyPatch merges an RFC 7396 patch into the JSON form of current (any struct with JSON tags)
// and decodes the result strictly into out. It returns the touched fields, sorted. Unknown and
// refused fields are field errors.
func ApplyPatch(current any, patch Patch, rules PatchRules, out any) ([]string, error) {
	var fe FieldErrors
	touched := make([]string, 0, len(patch))
	for k := range patch {
		why, known := rules[k]
		switch {
		case !known && slices.Contains([]string{"id", "version", "created", "updated", "last_sign_in", "path", "parent_id"}, k):
			fe.Add(k, "is read-only")
		case !known:
			fe.Add(k, "is not a field of this object")
		case why != PatchOK:
			fe.Add(k, "%s", why)
		default:
			touched = append(touched, k)
		}
	}
	if err := fe.Err(); err != nil {
		return nil, err
	}
	slices.Sort(touched)

	raw, err := json.Marshal(current)
	if err != nil {
		return nil, fmt.Errorf("directory: encode object for patch: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return nil, fmt.Errorf("directory: decode object for patch: %w", err)
	}
	for k, v := range patch {
		var val any
		if err := json.Unmarshal(v, &val); err != nil {
			return nil, Invalid(k, "is not valid JSON")
		}
		doc[k] = mergeValue(doc[k], val)
		if doc[k] == nil {
			delete(doc, k)
		}
	}
	merged, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("directory: encode patched object: %w", err)
	}
	if err := DecodeStrict(merged, out); err != nil {
		return nil, err
	}
	return touched, nil
}

// mergeValue is RFC 7396's MergePatch(Target, Patch) for one value.
func mergeValue(target, patch any) any {
	p, ok := patch.(map[string]any)
	if !ok {
		return patch
	}
	t, ok := target.(map[string]any)
	if !ok {
		t = map[string]any{}
	}
	for k, v := range p {
		if v == nil {
			delete(t, k)
			continue
		}
		t[k] = mergeValue(t[k], v)
	}
	return t
}

// DecodeStrict decodes one JSON value into out, refusing unknown fields and trailing data,
// and reports type mismatches as field errors.
func DecodeStrict(data []byte, out any) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(out); err != nil {
		return decodeError(err)
	}
	if dec.More() {
		return Invalid("body", "holds more than one JSON value")
	}
	return nil
}

// decodeError turns an encoding/json error into a field error that names the field.
func decodeError(err error) error {
	var typeErr *json.UnmarshalTypeError
	var syntaxErr *json.SyntaxError
	switch {
	case errors.As(err, &typeErr):
		field := typeErr.Field
		if field == "" {
			field = "body"
		}
		return Invalid(field, "must be %s, not JSON %s", jsonTypeName(typeErr.Type.Kind().String()), typeErr.Value)
	case errors.As(err, &syntaxErr):
		return Invalid("body", "is not valid JSON at byte %d: %v", syntaxErr.Offset, syntaxErr)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		name := strings.Trim(strings.TrimPrefix(err.Error(), "json: unknown field "), `"`)
		return Invalid(name, "is not a known field")
	case errors.Is(err, io.EOF):
		return Invalid("body", "is empty; a JSON object is expected")
	}
	return Invalid("body", "cannot be decoded: %v", err)
}

func jsonTypeName(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "map", "struct":
		return "an object"
	case "slice", "array":
		return "an array"
	case "int", "int64", "int32", "uint", "uint64", "float64":
		return "a number"
	}
	return goKind
}

// refValue renders a reference for an audit record: null when unset.
func refValue(id, name string) any {
	if id == "" {
		return nil
	}
	return map[string]string{"id": id, "name": name}
}
