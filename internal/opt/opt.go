// Package opt fills in the defaults of swarmgate's option structs, where a
// number that is zero or negative means "the default". One helper, so that
// every Options type reads the same way.
package opt

// Number is what Positive accepts: counts, sizes and time.Duration.
type Number interface {
	~int | ~int64 | ~float64
}

// Positive sets *v to def unless *v is above zero.
func Positive[T Number](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
