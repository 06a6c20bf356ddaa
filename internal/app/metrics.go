package app

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/deputy-iam/deputy/internal/approval"
)

// evidenceCollector reports the audit log's size, the latest checkpoint's size and how far each
// sink is behind, read from the store at each scrape: lag is what an operator alerts on.
type evidenceCollector struct {
	a                       *App
	size, checkpoint, sinks *prometheus.Desc
}

func newEvidenceCollector(a *App) *evidenceCollector {
	return &evidenceCollector{a: a,
		size:       prometheus.NewDesc("deputy_audit_log_events", "Events in the audit log.", nil, nil),
		checkpoint: prometheus.NewDesc("deputy_audit_checkpoint_events", "Events the latest signed checkpoint covers.", nil, nil),
		sinks:      prometheus.NewDesc("deputy_audit_sink_behind_events", "Events an audit sink has yet to deliver.", []string{"sink"}, nil),
	}
}

func (c *evidenceCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.size
	ch <- c.checkpoint
	ch <- c.sinks
}

func (c *evidenceCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	size, err := c.a.Store.LogSize(ctx)
	if err != nil {
		c.a.Log.WarnContext(ctx, "metrics: audit log size", "err", err)
		return
	}
	ch <- prometheus.MustNewConstMetric(c.size, prometheus.GaugeValue, float64(size))
	if c.a.Evidence != nil {
		if _, cp, err := c.a.Evidence.Latest(ctx); err == nil {
			ch <- prometheus.MustNewConstMetric(c.checkpoint, prometheus.GaugeValue, float64(cp.Size))
		}
	}
	for _, s := range c.a.sinks() {
		next, err := c.a.Store.SinkCursor(ctx, s.Name())
		if err != nil {
			continue
		}
		ch <- prometheus.MustNewConstMetric(c.sinks, prometheus.GaugeValue, float64(int64(size)-next), s.Name())
	}
}

// requestsCollector reports the open approval requests and the break-glass changes no one has
// reviewed yet (what a tier-0 admin must look at).
type requestsCollector struct {
	a    *App
	desc *prometheus.Desc
}

func newRequestsCollector(a *App) *requestsCollector {
	return &requestsCollector{a: a, desc: prometheus.NewDesc("deputy_approval_requests",
		"Approval requests still needing someone: open ones, and unreviewed break-glass changes.", []string{"state"}, nil)}
}

func (c *requestsCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *requestsCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	for _, state := range []approval.State{approval.Open, approval.Unreviewed} {
		n, err := c.a.Store.CountRequests(ctx, state)
		if err != nil {
			c.a.Log.WarnContext(ctx, "metrics: approval requests", "err", err)
			return
		}
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), string(state))
	}
}
