// Whether a Kafka client accepts a configuration, with no broker.
// Compiled once and run (`java -cp <probe>:<jars> KafkaClientProbe <properties file>`) by devkit/rehearse/msk_iam.py.
//
// It loads the JAAS login module named first in sasl.jaas.config and the class of
// sasl.client.callback.handler.class, then constructs a KafkaConsumer with the configuration. The
// constructor builds the consumer's channel: for SASL it parses the JAAS configuration, logs in through
// the login module and instantiates and configures the callback handler; for SSL it builds the TLS
// context. It opens no connection (that happens on the first poll). The consumer is then closed.
// Prints "ok <kafka-clients version>" and exits 0, or prints the cause chain and exits 1.

import java.io.FileReader;
import java.io.Reader;
import java.time.Duration;
import java.util.Properties;

import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.utils.AppInfoParser;

public class KafkaClientProbe {
    public static void main(String[] args) throws Exception {
        Properties config = new Properties();
        try (Reader reader = new FileReader(args[0])) {
            config.load(reader);
        }
        try {
            String jaas = config.getProperty("sasl.jaas.config");
            if (jaas != null && !jaas.isBlank()) {
                Class<?> module = Class.forName(jaas.trim().split("\\s+")[0]);
                if (!javax.security.auth.spi.LoginModule.class.isAssignableFrom(module)) {
                    throw new IllegalArgumentException(module.getName() + " is not a JAAS LoginModule");
                }
            }
            String handler = config.getProperty("sasl.client.callback.handler.class");
            if (handler != null && !handler.isBlank()) {
                Class<?> type = Class.forName(handler.trim());
                if (!org.apache.kafka.common.security.auth.AuthenticateCallbackHandler.class.isAssignableFrom(type)) {
                    throw new IllegalArgumentException(type.getName() + " is not an AuthenticateCallbackHandler");
                }
            }
            config.put("key.deserializer", ByteArrayDeserializer.class.getName());
            config.put("value.deserializer", ByteArrayDeserializer.class.getName());
            try (KafkaConsumer<byte[], byte[]> consumer = new KafkaConsumer<>(config)) {
                consumer.close(Duration.ZERO);
            }
        } catch (Throwable error) {
            StringBuilder chain = new StringBuilder();
            for (Throwable cause = error; cause != null; cause = cause.getCause()) {
                chain.append(chain.length() == 0 ? "" : " <- ").append(cause);
            }
            System.out.println("failed " + chain);
            System.exit(1);
        }
        System.out.println("ok " + AppInfoParser.getVersion());
    }
}
