package local

import (
	"fmt"
	"sort"
	"strings"
)

// Properties is a Kafka .properties file. Rendering sorts keys so that a
// node's file is stable and diffable.
type Properties map[string]string

func (p Properties) String() string {
	keys := make([]string, 0, len(p))
	for k := range p {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%s\n", k, p[k])
	}
	return b.String()
}

// quorumVoters renders controller.quorum.voters for static KRaft voters.
func quorumVoters(controllers []endpoint) string {
	parts := make([]string, len(controllers))
	for i, c := range controllers {
		parts[i] = fmt.Sprintf("%d@%s", c.id, c.addr)
	}
	return strings.Join(parts, ",")
}

// initialControllers renders kafka-storage format's --initial-controllers
// for a dynamic quorum: id@host:port:directory-id, comma separated.
func initialControllers(controllers []endpoint) string {
	parts := make([]string, len(controllers))
	for i, c := range controllers {
		parts[i] = fmt.Sprintf("%d@%s:%s", c.id, c.addr, c.directoryID)
	}
	return strings.Join(parts, ",")
}

type endpoint struct {
	id          int32
	addr        string
	directoryID string
}

// controllerProps is a controller's configuration; quorum says how it finds
// the quorum (Fleet.quorumProps).
func controllerProps(id int32, addr, dataDir string, quorum Properties) Properties {
	p := Properties{
		"process.roles":                         "controller",
		"node.id":                               fmt.Sprint(id),
		"listeners":                             "CONTROLLER://" + addr,
		"advertised.listeners":                  "CONTROLLER://" + addr,
		"controller.listener.names":             "CONTROLLER",
		"listener.security.protocol.map":        "CONTROLLER:PLAINTEXT",
		"log.dirs":                              dataDir,
		"num.io.threads":                        "2",
		"num.network.threads":                   "2",
		"controller.quorum.election.timeout.ms": "1000",
	}
	for k, v := range quorum {
		p[k] = v
	}
	return p
}

// brokerProps is a broker's configuration. extra overrides the defaults, so a
// test can set anything Kafka accepts.
func brokerProps(id int32, addr, rack, dataDir string, quorum Properties, extra map[string]string) Properties {
	p := Properties{
		"process.roles":                  "broker",
		"node.id":                        fmt.Sprint(id),
		"listeners":                      "PLAINTEXT://" + addr,
		"advertised.listeners":           "PLAINTEXT://" + addr,
		"inter.broker.listener.name":     "PLAINTEXT",
		"controller.listener.names":      "CONTROLLER",
		"listener.security.protocol.map": "CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT",
		"log.dirs":                       dataDir,
		"broker.rack":                    rack,
		"num.io.threads":                 "4",
		"num.network.threads":            "2",
		"num.partitions":                 "1",
		// fleetd elects preferred leaders itself; the automatic rebalance would
		// hide whether it did.
		"auto.leader.rebalance.enable":             "false",
		"group.initial.rebalance.delay.ms":         "0",
		"offsets.topic.replication.factor":         "3",
		"transaction.state.log.replication.factor": "3",
		"transaction.state.log.min.isr":            "2",
		"unclean.leader.election.enable":           "false",
	}
	for k, v := range quorum {
		p[k] = v
	}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// addSASLSSL adds a SASL_SSL listener (SCRAM-SHA-512, TLS from a PEM
// keystore) at addr beside the PLAINTEXT one, which replication keeps.
func (p Properties) addSASLSSL(addr, keystorePEM string) {
	p["listeners"] += ",SASL_SSL://" + addr
	p["advertised.listeners"] += ",SASL_SSL://" + addr
	p["listener.security.protocol.map"] += ",SASL_SSL:SASL_SSL"
	p["sasl.enabled.mechanisms"] = "SCRAM-SHA-512"
	p["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"] = "org.apache.kafka.common.security.scram.ScramLoginModule required;"
	p["listener.name.sasl_ssl.ssl.keystore.type"] = "PEM"
	p["listener.name.sasl_ssl.ssl.keystore.location"] = keystorePEM
}

// log4j2Config logs to ${kafka.logs.dir}/server.log (Kafka 4.x).
const log4j2Config = `status = warn
appender.file.type = File
appender.file.name = FILE
appender.file.fileName = ${sys:kafka.logs.dir}/server.log
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = FILE
logger.kafka.name = kafka
logger.kafka.level = INFO
logger.state.name = state.change.logger
logger.state.level = WARN
`

// log4jConfig is the same for Kafka 3.x (reload4j).
const log4jConfig = `log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=${kafka.logs.dir}/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.state.change.logger=WARN
`
