package control

import (
	"crypto/sha256"
	"encoding/json"
	"net/netip"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/route"
)

// fillAll sets every field of v (a struct) to a non-zero value.
func fillAll(t *testing.T, v reflect.Value, seed int) {
	t.Helper()
	for i := 0; i < v.NumField(); i++ {
		f := v.Field(i)
		name := v.Type().Field(i).Name
		switch {
		case f.Type() == reflect.TypeFor[time.Time]():
			f.Set(reflect.ValueOf(time.Date(2024, 1, 2, 3, 4, 5, 6+seed, time.UTC)))
		case f.Type() == reflect.TypeFor[time.Duration]():
			f.SetInt(int64(seed+i) * int64(time.Millisecond))
		case f.Kind() == reflect.String:
			f.SetString(name + "-value")
		case f.Kind() == reflect.Bool:
			f.SetBool(true)
		case f.Kind() == reflect.Int, f.Kind() == reflect.Int64:
			f.SetInt(int64(seed + i + 1))
		case f.Type() == reflect.TypeFor[[]netip.Prefix]():
			f.Set(reflect.ValueOf([]netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8::/32")}))
		case f.Kind() == reflect.Pointer && f.Type().Elem().Kind() == reflect.Struct:
			f.Set(reflect.New(f.Type().Elem()))
			fillAll(t, f.Elem(), seed)
		case f.Kind() == reflect.Struct:
			fillAll(t, f, seed)
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.String:
			f.Set(reflect.ValueOf([]string{name + "-a", name + "-b"}))
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Struct:
			s := reflect.MakeSlice(f.Type(), 2, 2)
			for j := range 2 {
				fillAll(t, s.Index(j), seed+j)
			}
			f.Set(s)
		default:
			t.Fatalf("field %s of kind %s: teach fillAll and the wire format about it", name, f.Kind())
		}
	}
}

// TestWireRouteCoversTheModel fills every field of route.Route and checks
// it survives the wire: a field added to the model and not to wireRoute
// fails here.
func TestWireRouteCoversTheModel(t *testing.T) {
	var r route.Route
	fillAll(t, reflect.ValueOf(&r).Elem(), 0)
	cfg := route.Config{Routes: []route.Route{r}, Errors: []*route.LabelError{{Service: "bad", Label: "l", Value: "v", Reason: "why"}}}
	enc, err := encodeConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	items := map[string]decoded{}
	for k, raw := range enc {
		d, err := decodeItem(k, raw)
		if err != nil {
			t.Fatal(err)
		}
		items[k] = d
	}
	got := buildConfig(items, sortedKeys(items), time.Time{})
	if !reflect.DeepEqual(got.Routes, cfg.Routes) {
		t.Errorf("route after the wire:\n got %+v\nwant %+v", got.Routes, cfg.Routes)
	}
	if !reflect.DeepEqual(got.Errors, cfg.Errors) {
		t.Errorf("label errors after the wire: %+v", got.Errors)
	}
}

func TestVersionIsTheContent(t *testing.T) {
	version := func(c route.Config) string {
		enc, err := encodeConfig(c)
		if err != nil {
			t.Fatal(err)
		}
		return versionOf(sortedKeys(enc), func(k string) [sha256.Size]byte { return sumItem(k, enc[k]) })
	}
	a, b := testRoute("a", "10.0.0.1:8080"), testRoute("b", "10.0.0.2:8080")
	base := version(testConfig(a, b))
	bLocal := b
	bLocal.CreatedAt = b.CreatedAt.In(time.FixedZone("CEST", 2*3600))
	stamped := testConfig(a, b)
	stamped.Changed = time.Now()
	moved := b
	moved.Endpoints = []string{"10.0.0.3:8080"}
	renamed := b
	renamed.Path = "/b"
	tests := []struct {
		name string
		cfg  route.Config
		same bool
	}{
		{"routes in another order", testConfig(b, a), true},
		{"a time in another zone", testConfig(a, bLocal), true},
		{"another Changed", stamped, true},
		{"empty endpoints as nil", testConfig(a, b, func() route.Route { r := testRoute("c"); r.Endpoints = []string{}; return r }()), false},
		{"an endpoint moved", testConfig(a, moved), false},
		{"a route changed", testConfig(a, renamed), false},
		{"a label error", route.Config{Routes: []route.Route{a, b}, Errors: []*route.LabelError{{Service: "x", Label: "l", Value: "v", Reason: "r"}}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := version(tt.cfg)
			if (got == base) != tt.same {
				t.Errorf("version %s vs %s: same=%v, want %v", got, base, got == base, tt.same)
			}
			if len(got) != versionLen || !validVersion(got) {
				t.Errorf("version %q is not %d hex digits", got, versionLen)
			}
		})
	}
	e1, e2 := &route.LabelError{Service: "x", Label: "l1", Value: "v", Reason: "r"}, &route.LabelError{Service: "x", Label: "l2", Value: "v", Reason: "r"}
	if version(route.Config{Errors: []*route.LabelError{e1, e2}}) != version(route.Config{Errors: []*route.LabelError{e2, e1}}) {
		t.Error("a service's label errors in another order make another version")
	}
	if version(testConfig(testRoute("c"))) != version(testConfig(func() route.Route { r := testRoute("c"); r.Endpoints = []string{}; return r }())) {
		t.Error("nil and empty endpoints differ in version")
	}
}

func TestDuplicateRouteIDsBothTravel(t *testing.T) {
	a1, a2 := testRoute("a", "10.0.0.1:8080"), testRoute("a", "10.0.0.2:8080")
	a2.Path = "/two"
	enc, err := encodeConfig(testConfig(a1, a2))
	if err != nil {
		t.Fatal(err)
	}
	if enc["r:a"] == nil || enc["r:a#2"] == nil || enc["e:a#2"] == nil {
		t.Fatalf("keys %v", sortedKeys(enc))
	}
	if !strings.Contains(string(enc["r:a#2"]), `"path":"/two"`) {
		t.Errorf("second route: %s", enc["r:a#2"])
	}
}

func TestDecodeRejectsUnknownFields(t *testing.T) {
	for _, tt := range []struct{ key, raw string }{
		{"r:web", `{"svc":"web","env":["PASSWORD=x"]}`},
		{"x:bad", `[{"label":"l","value":"v","reason":"r","spec":{}}]`},
		{"q:web", `{}`},
		{"e:web", `{"not":"a list"}`},
	} {
		if _, err := decodeItem(tt.key, []byte(tt.raw)); err == nil {
			t.Errorf("%s %s: decoded", tt.key, tt.raw)
		}
	}
}

// TestCoalescedDelta publishes versions and asks for the frame that
// brings each earlier version to the last: the keys whose items differ,
// and none that changed and changed back.
func TestCoalescedDelta(t *testing.T) {
	a, b, c := testRoute("a", "10.0.0.1:80"), testRoute("b", "10.0.0.2:80"), testRoute("c", "10.0.0.3:80")
	b2 := b
	b2.Endpoints = []string{"10.0.0.4:80"}
	states := []route.Config{
		testConfig(a, b),     // v0
		testConfig(a, b2),    // v1: b's endpoints
		testConfig(a, b2, c), // v2: c added
		testConfig(a, b, c),  // v3: b's endpoints back
		testConfig(b, c),     // v4: a removed
	}
	s := NewServer(ServerOptions{History: 4})
	var ids []string
	for _, cfg := range states {
		s.Update(cfg)
		ids = append(ids, s.Version())
	}
	cur := s.cur.Load()
	tests := []struct {
		base string
		kind frameKind
		set  []string
		del  []string
	}{
		{ids[0], kindResync, nil, nil}, // v0 left the 4-version history
		{ids[1], kindDelta, []string{"e:b", "e:c", "r:c"}, []string{"e:a", "r:a"}},
		{ids[2], kindDelta, []string{"e:b"}, []string{"e:a", "r:a"}}, // e:b changed and changed back
		{ids[3], kindDelta, nil, []string{"e:a", "r:a"}},             // the live delta
		{ids[4], kindDelta, nil, nil},
		{strings.Repeat("f", versionLen), kindResync, nil, nil},
		{"", kindSnapshot, nil, nil},
	}
	for _, tt := range tests {
		frame, kind := s.frameFrom(cur, tt.base)
		if kind != tt.kind {
			t.Errorf("from %.8s: %v, want %v", tt.base, kind, tt.kind)
			continue
		}
		var f wireFrame
		if err := json.Unmarshal(frame, &f); err != nil {
			t.Fatal(err)
		}
		if kind == kindDelta && (!slices.Equal(sortedKeys(f.Set), tt.set) || !slices.Equal(f.Del, tt.del) || f.From != tt.base) {
			t.Errorf("from %.8s: set %v del %v from %.8s; want set %v del %v", tt.base, sortedKeys(f.Set), f.Del, f.From, tt.set, tt.del)
		}
		if f.V != cur.id {
			t.Errorf("from %.8s: to %s, want %s", tt.base, f.V, cur.id)
		}
	}
}

func TestHistoryBounds(t *testing.T) {
	h := history{max: 3, maxKeys: 10, seqOf: map[string]uint64{}}
	for i := range 5 {
		h.add(histEntry{seq: uint64(i), id: string(rune('a' + i)), touched: []string{"k"}, before: make([]itemSum, 1)})
	}
	if len(h.entries) != 3 || h.entries[0].id != "c" || len(h.seqOf) != 3 {
		t.Errorf("count bound: %d entries from %s, %d ids", len(h.entries), h.entries[0].id, len(h.seqOf))
	}
	h.add(histEntry{seq: 5, id: "f", touched: make([]string, 9), before: make([]itemSum, 9)})
	if len(h.entries) != 2 || h.keys != 10 {
		t.Errorf("key bound: %d entries, %d keys", len(h.entries), h.keys)
	}
	h.add(histEntry{seq: 6, id: "g", touched: make([]string, 50), before: make([]itemSum, 50)})
	if len(h.entries) != 1 || h.entries[0].id != "g" {
		t.Errorf("one entry beyond the bound is still kept: %d entries", len(h.entries))
	}
}
