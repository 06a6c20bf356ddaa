package httpx

import (
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/deputy-iam/deputy/internal/directory"
)

// MaxBody is the largest request body Deputy reads.
const MaxBody = 1 << 20

// Decode reads the request body as exactly one JSON value into v. It refuses bodies over
// MaxBody (413), other media types (415), invalid UTF-8 (400), malformed JSON (400), and unknown
// fields or values of the wrong type (422, naming the field).
func Decode(w http.ResponseWriter, r *http.Request, v any) error {
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		if err != nil || (mt != "application/json" && mt != "application/merge-patch+json" && !strings.HasSuffix(mt, "+json")) {
			return NewProblem(http.StatusUnsupportedMediaType, "unsupported_media_type",
				fmt.Sprintf("the body must be JSON (application/json), not %q", ct))
		}
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, MaxBody))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		return NewProblem(http.StatusRequestEntityTooLarge, "too_large", fmt.Sprintf("the body is larger than %d bytes", MaxBody))
	case err != nil:
		return NewProblem(http.StatusBadRequest, "bad_body", "the body could not be read")
	case len(body) == 0:
		return NewProblem(http.StatusBadRequest, "bad_body", "the body is empty; a JSON object is expected")
	case !utf8.Valid(body):
		return NewProblem(http.StatusBadRequest, "bad_body", "the body is not valid UTF-8")
	}
	if err := directory.DecodeStrict(body, v); err != nil {
		var fe directory.FieldErrors
		if errors.As(err, &fe) && len(fe) == 1 && fe[0].Field == "body" {
			p := NewProblem(http.StatusBadRequest, "bad_body", fe[0].Message)
			p.Fields = fe
			return p
		}
		return err
	}
	return nil
}

// IfMatch reads an If-Match header holding one of Deputy's ETags ("3", W/"3" or 3) and returns
// the version, 0 when the header is absent or "*".
func IfMatch(r *http.Request) (int64, error) {
	h := strings.TrimSpace(r.Header.Get("If-Match"))
	if h == "" || h == "*" {
		return 0, nil
	}
	v, err := strconv.ParseInt(strings.Trim(strings.TrimPrefix(h, "W/"), `"`), 10, 64)
	if err != nil || v <= 0 {
		return 0, NewProblem(http.StatusBadRequest, "bad_if_match", fmt.Sprintf("If-Match %q is not an ETag this server issued", h))
	}
	return v, nil
}

// ETag renders an object version as an ETag.
func ETag(version int64) string { return `"` + strconv.FormatInt(version, 10) + `"` }
