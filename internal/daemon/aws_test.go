package daemon

import "testing"

func TestQueueOriginIsTheQueuesAccountAndFleetdsRegion(t *testing.T) {
	o, err := queueOrigin("https://sqs.us-east-1.amazonaws.com/123456789012/fleetd-events", "us-east-1")
	if err != nil || o.Account != "123456789012" || o.Region != "us-east-1" {
		t.Fatalf("%+v %v", o, err)
	}
	for _, bad := range []struct{ url, region string }{
		{"https://sqs.us-east-1.amazonaws.com/fleetd-events", "us-east-1"},
		{"https://sqs.us-east-1.amazonaws.com/12345/fleetd-events", "us-east-1"},
		{"https://sqs.us-east-1.amazonaws.com/123456789012/fleetd-events", ""},
	} {
		if _, err := queueOrigin(bad.url, bad.region); err == nil {
			t.Errorf("%s in %q: accepted", bad.url, bad.region)
		}
	}
}
