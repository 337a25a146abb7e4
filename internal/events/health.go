package events

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// An AWS Health scheduled change for EC2, as EventBridge delivers it (a rule
// matching source aws.health and detail-type "AWS Health Event" routes it to
// fleetd's queue):
//
//	{
//	  "version": "0",
//	  "id": "7bf73129-1428-4cd3-a780-95db273d1602",
//	  "detail-type": "AWS Health Event",
//	  "source": "aws.health",
//	  "account": "123456789012",
//	  "time": "2026-11-24T01:43:21Z",
//	  "region": "us-east-1",
//	  "resources": ["i-0abc1111def222333"],
//	  "detail": {
//	    "eventArn": "arn:aws:health:us-east-1::event/EC2/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED/AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED_7f5d6e",
//	    "service": "EC2",
//	    "eventTypeCode": "AWS_EC2_INSTANCE_RETIREMENT_SCHEDULED",
//	    "eventTypeCategory": "scheduledChange",
//	    "eventScopeCode": "ACCOUNT_SPECIFIC",
//	    "startTime": "Sat, 05 Dec 2026 15:00:00 GMT",
//	    "eventDescription": [{"language": "en_US", "latestDescription": "EC2 has detected degradation of the underlying hardware ..."}],
//	    "affectedEntities": [{"entityValue": "i-0abc1111def222333"}]
//	  }
//	}
type healthDetail struct {
	EventArn          string `json:"eventArn"`
	Service           string `json:"service"`
	EventTypeCode     string `json:"eventTypeCode"`
	EventTypeCategory string `json:"eventTypeCategory"`
	StartTime         string `json:"startTime"`
	EndTime           string `json:"endTime"`
	EventDescription  []struct {
		LatestDescription string `json:"latestDescription"`
	} `json:"eventDescription"`
	AffectedEntities []struct {
		EntityValue string `json:"entityValue"`
	} `json:"affectedEntities"`
}

// healthTime reads AWS Health's times (RFC 1123 in events, RFC 3339 elsewhere).
func healthTime(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	for _, layout := range []string{time.RFC1123, time.RFC3339, "Mon, 2 Jan 2006 15:04:05 MST"} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, fmt.Errorf("time %q is neither RFC 1123 nor RFC 3339", s)
}

func parseHealth(env envelope, now time.Time) ([]Event, error) {
	var d healthDetail
	if err := json.Unmarshal(env.Detail, &d); err != nil {
		return nil, fmt.Errorf("AWS Health detail: %w", err)
	}
	if d.EventArn == "" || d.EventTypeCode == "" {
		return nil, fmt.Errorf("AWS Health event without eventArn or eventTypeCode")
	}
	start, err := healthTime(d.StartTime)
	if err != nil {
		return nil, fmt.Errorf("AWS Health startTime: %w", err)
	}
	end, err := healthTime(d.EndTime)
	if err != nil {
		return nil, fmt.Errorf("AWS Health endTime: %w", err)
	}
	kind := kindOfCode(d.EventTypeCode)
	if d.Service != "" && d.Service != "EC2" {
		kind = KindUnknown
	}
	desc := d.EventTypeCode
	if len(d.EventDescription) > 0 {
		desc = d.EventDescription[0].LatestDescription
	}
	ids := map[string]bool{}
	for _, e := range d.AffectedEntities {
		ids[e.EntityValue] = true
	}
	for _, r := range env.Resources {
		ids[instanceFromResource(r)] = true
	}
	var out []Event
	for id := range ids {
		if !strings.HasPrefix(id, "i-") {
			continue
		}
		out = append(out, Event{ID: d.EventArn + "/" + id, Kind: kind, InstanceID: id, NotBefore: start, NotAfter: end,
			Source: env.Source, Description: desc, Seen: now})
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("AWS Health event %s names no instance", d.EventArn)
	}
	return out, nil
}

// instanceFromResource accepts an instance id or an instance ARN.
func instanceFromResource(r string) string {
	if i := strings.LastIndex(r, "instance/"); i >= 0 {
		return r[i+len("instance/"):]
	}
	return r
}
