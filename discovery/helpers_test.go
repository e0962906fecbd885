package discovery

import (
	"reflect"
	"strings"
	"testing"

	"github.com/swarmgate/swarmgate/route"
)

// labels returns the minimal HTTP service (app.example.org -> :8080) plus kv
// pairs; a pair whose value is "<unset>" removes the label.
func labels(kv ...string) map[string]string {
	return withPairs(map[string]string{"swarmgate.hosts": "app.example.org", "swarmgate.port": "8080"}, kv...)
}

// ilabels returns the minimal Interlock service (demo.local -> :8080) plus kv
// pairs; "<unset>" removes a label.
func ilabels(kv ...string) map[string]string {
	return withPairs(map[string]string{"com.docker.lb.hosts": "demo.local", "com.docker.lb.port": "8080"}, kv...)
}

// only returns exactly the kv pairs.
func only(kv ...string) map[string]string {
	return withPairs(map[string]string{}, kv...)
}

// withPairs sets the kv pairs in m and returns it; a pair whose value is
// "<unset>" removes the label instead.
func withPairs(m map[string]string, kv ...string) map[string]string {
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "<unset>" {
			delete(m, kv[i])
			continue
		}
		m[kv[i]] = kv[i+1]
	}
	return m
}

// httpRoute is the route that labels() yields, changed by mod.
func httpRoute(mod func(*route.Route)) route.Route {
	r := route.Route{
		Service: "web", Hosts: []string{"app.example.org"}, Path: "/", Weight: route.DefaultWeight,
		Port: 8080, Backend: route.BackendTask, Balancer: route.BalancerP2C, TLS: route.TLSOff,
		BackendTLS: route.BackendTLSOff, Timeout: route.DefaultTimeout,
	}
	if mod != nil {
		mod(&r)
	}
	return r
}

// l4Route is a route with no HTTP side, changed by mod.
func l4Route(mod func(*route.Route)) route.Route {
	r := route.Route{
		Service: "web", Weight: route.DefaultWeight, Port: 8080, Backend: route.BackendTask,
		Balancer: route.BalancerP2C, TLS: route.TLSOff, BackendTLS: route.BackendTLSOff, Timeout: route.DefaultTimeout,
	}
	mod(&r)
	return r
}

// checkRoutes asserts that service "web" with labels parses to exactly want,
// without errors, and returns what it parsed to.
func checkRoutes(t *testing.T, labels map[string]string, want []route.Route) []route.Route {
	t.Helper()
	got, errs := ParseLabels("web", labels)
	for _, e := range errs {
		t.Errorf("unexpected error: %v", e)
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("routes:\n got %+v\nwant %+v", got, want)
	}
	return got
}

// wantErr is one expected error: its label and a fragment of its reason.
type wantErr struct{ label, reason string }

// checkRejected asserts that service "web" with labels yields no routes and
// exactly the errors want, in order, each naming the service, the label and
// that label's value as written.
func checkRejected(t *testing.T, labels map[string]string, want []wantErr) {
	t.Helper()
	const service = "web"
	got, errs := ParseLabels(service, labels)
	if got != nil {
		t.Errorf("routes = %+v, want nil", got)
	}
	if len(errs) != len(want) {
		t.Errorf("got %d errors, want %d:", len(errs), len(want))
		for _, e := range errs {
			t.Errorf("  %v", e)
		}
		return
	}
	for i, e := range errs {
		if e.Label != want[i].label || !strings.Contains(e.Reason, want[i].reason) {
			t.Errorf("error %d = %v; want label %s, reason containing %q", i, e, want[i].label, want[i].reason)
		}
		if e.Service != service {
			t.Errorf("error %d names service %q, want %q", i, e.Service, service)
		}
		if v, ok := labels[e.Label]; ok && secretLabel(e.Label) && strings.TrimSpace(v) != "" {
			if !strings.Contains(e.Value, "withheld") || strings.Contains(e.Value+e.Reason, strings.TrimSpace(v)) {
				t.Errorf("error %d shows the value of %s: %v", i, e.Label, e)
			}
		} else if (ok && e.Value != v) || (!ok && e.Value != "") {
			t.Errorf("error %d value %q, want the label's value %q", i, e.Value, v)
		}
		if !strings.Contains(e.Error(), service) || !strings.Contains(e.Error(), e.Label) {
			t.Errorf("error %d text %q does not name service and label", i, e.Error())
		}
	}
}
