package balancer

import (
	"math/rand/v2"
	"testing"
	"time"

	"github.com/swarmgate/swarmgate/internal/testkit"
)

// TestP2CSpreadsUnderNoise: three healthy tasks whose latencies jitter and
// sometimes spike share sequential traffic evenly. (Before costs within 2x
// or 1 ms tied, such traffic split about 75/24/1.) Over 30 runs the shares
// stayed within ±9%; the bound leaves room for the random draw.
func TestP2CSpreadsUnderNoise(t *testing.T) {
	clk := testkit.NewClock()
	eps := endpoints(NewPool(PoolOptions{Now: clk.Now}), 3)
	count := map[*Endpoint]int{}
	const picks = 30000
	for range picks {
		e := P2C{}.Pick(eps, Hint{}, clk.Now())
		count[e]++
		lat := time.Duration(200+rand.IntN(200)) * time.Microsecond
		if rand.IntN(50) == 0 {
			lat = 3 * time.Millisecond // a pause
		}
		e.Acquire()(lat, Success)
		clk.Advance(lat + 200*time.Microsecond)
	}
	checkShares(t, eps, count, picks, []float64{1. / 3, 1. / 3, 1. / 3}, 0.15)
}
