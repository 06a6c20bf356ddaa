package notify

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/deputy-iam/deputy/internal/change"
	"github.com/deputy-iam/deputy/internal/directory"
)

// WebhookBody is the JSON a webhook receives: the notification as the pipeline enqueued it,
// the usernames of the recipients that exist, and the outbox message's ID, which a retry
// repeats (also in the Deputy-Notification-ID header) so that a receiver can drop duplicates.
type WebhookBody struct {
	ID        int64    `json:"id"`
	Kind      string   `json:"kind"`
	Request   string   `json:"request,omitempty"`
	Run       string   `json:"run,omitempty"`
	To        []string `json:"to"`        // user IDs
	Usernames []string `json:"usernames"` // of the users in To that exist, in order
	Subject   string   `json:"subject"`
	Body      string   `json:"body,omitempty"`
	URL       string   `json:"url,omitempty"` // the request, when a base URL is configured
}

// toWebhook POSTs the notification to the webhook; any 2xx answer accepts it. Errors never
// name the URL, which may hold a secret.
func (n *Notifier) toWebhook(ctx context.Context, m change.OutboxMessage, note change.Notification, users []directory.User) error {
	body := WebhookBody{ID: m.ID, Kind: note.Kind, Request: note.Request, Run: note.Run, To: note.To, Subject: note.Subject,
		Body:      note.Body,
		Usernames: make([]string, 0, len(users)), URL: n.requestURL(note.Request)}
	if body.To == nil {
		body.To = []string{}
	}
	for _, u := range users {
		body.Usernames = append(body.Usernames, u.Username)
	}
	raw, err := json.Marshal(body)
	if err != nil {
		return fmt.Errorf("notify: webhook: encode: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, sendTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, n.opts.Webhook, bytes.NewReader(raw))
	if err != nil {
		return errors.New("notify: webhook: the configured URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "deputy-notify")
	req.Header.Set("Deputy-Notification-ID", strconv.FormatInt(m.ID, 10))
	resp, err := n.http.Do(req)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) {
			err = uerr.Err // without the URL
		}
		return fmt.Errorf("notify: webhook: %w", err)
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return fmt.Errorf("notify: webhook answered %s", resp.Status)
	}
	return nil
}
