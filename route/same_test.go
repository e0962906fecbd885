package route

import (
	"net/netip"
	"reflect"
	"testing"
	"time"
)

func sameTestRoute() Route {
	return Route{
		Service: "app", Name: "api", CreatedAt: time.Unix(10, 0), Hosts: []string{"a.example.org"}, Path: "/",
		Port: 80, Weight: 100, Balancer: "round-robin", TLS: TLSOff, Endpoints: []string{"10.0.0.1:80", "10.0.0.2:80"},
		Redirects: []Redirect{{From: "/a", To: "/b", Code: 301}},
		Policy:    &Policy{Allow: []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}, RateLimit: Rate{N: 1, Per: time.Second}},
	}
}

// TestSameEveryField changes each field of Route in turn, by reflection,
// so that a field added to Route and forgotten by Same fails here.
func TestSameEveryField(t *testing.T) {
	base := sameTestRoute()
	if !Same(&base, &base) {
		t.Fatal("a route is not the same as itself")
	}
	cp := sameTestRoute()
	if !Same(&base, &cp) {
		t.Fatal("equal routes with their own slices and policy are not the same")
	}
	typ := reflect.TypeOf(base)
	for i := range typ.NumField() {
		f := typ.Field(i)
		t.Run(f.Name, func(t *testing.T) {
			other := sameTestRoute()
			v := reflect.ValueOf(&other).Elem().Field(i)
			switch f.Type.Kind() {
			case reflect.String:
				v.SetString(v.String() + "x")
			case reflect.Bool:
				v.SetBool(!v.Bool())
			case reflect.Int, reflect.Int64:
				v.SetInt(v.Int() + 1)
			case reflect.Slice:
				v.Set(reflect.Append(v, reflect.Zero(f.Type.Elem())))
			case reflect.Pointer:
				v.Set(reflect.New(f.Type.Elem()))
			case reflect.Struct: // time.Time
				v.Set(reflect.ValueOf(time.Unix(11, 0)))
			default:
				t.Fatalf("field %s of kind %s: teach this test to change it", f.Name, f.Type.Kind())
			}
			if Same(&base, &other) {
				t.Errorf("routes that differ in %s are the same", f.Name)
			}
		})
	}
}

func TestSamePolicy(t *testing.T) {
	a, b := sameTestRoute(), sameTestRoute()
	b.Policy.RateLimit.N = 2
	if Same(&a, &b) {
		t.Error("routes whose policies differ are the same")
	}
	b.Policy = nil
	if Same(&a, &b) {
		t.Error("a route with a policy is the same as one without")
	}
	a.Policy = nil
	if !Same(&a, &b) {
		t.Error("two routes without policies differ")
	}
}
