package control

import (
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zapcore"
	"go.uber.org/zap/zaptest/observer"

	"github.com/swarmgate/swarmgate/route"
)

// TestClientLogsLabelErrorsOnce: an edge's log names each service the
// control plane skips, once when the error appears, not on every frame.
func TestClientLogsLabelErrorsOnce(t *testing.T) {
	s := startServer(t, "", ServerOptions{}, nil)
	bad := &route.LabelError{Service: "shop", Label: "swarmgate.port", Value: "eighty", Reason: "not a port number"}
	s.Update(route.Config{Routes: []route.Route{testRoute("web", "10.0.0.1:8080")}, Errors: []*route.LabelError{bad}})
	core, logs := observer.New(zapcore.InfoLevel)
	got := newConfigs()
	startClient(t, ClientOptions{Addrs: []string{s.addr}, Logger: zap.New(core)}, got)
	want := route.Config{Routes: []route.Route{testRoute("web", "10.0.0.1:8080")}, Errors: []*route.LabelError{bad}}
	got.waitFor(t, want, "the first Config")
	// Another change with the same label error: not logged again.
	want.Routes[0].Endpoints = []string{"10.0.0.2:8080"}
	s.Update(want)
	got.waitFor(t, want, "the second Config")
	lines := logs.FilterMessage("service skipped: invalid label").FilterField(zap.String("service", "shop"))
	if lines.Len() != 1 {
		t.Fatalf("%d log lines for the skipped service, want 1", lines.Len())
	}
	if f := lines.All()[0].ContextMap(); f["label"] != "swarmgate.port" || f["value"] != "eighty" || f["reason"] != "not a port number" {
		t.Fatalf("log line fields: %v", f)
	}
}
