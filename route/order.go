package route

import (
	"cmp"
	"slices"
)

// HTTPByAge returns the HTTP routes of c, oldest first (by CreatedAt, then
// ID): the order in which an older route wins what two routes both claim,
// and in which listings are deterministic. The routes are c's own.
func (c Config) HTTPByAge() []*Route {
	routes := make([]*Route, 0, len(c.Routes))
	for i := range c.Routes {
		if c.Routes[i].IsHTTP() {
			routes = append(routes, &c.Routes[i])
		}
	}
	slices.SortStableFunc(routes, func(a, b *Route) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID(), b.ID()))
	})
	return routes
}
