package veille.es;

import java.nio.file.Files;
import java.nio.file.Path;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.elasticsearch.common.logging.LogConfigurator;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.node.InternalSettingsPreparer;
import org.elasticsearch.node.Node;
import org.elasticsearch.node.VeilleClasspathNode;
import org.elasticsearch.transport.netty4.Netty4Plugin;

/**
 * Runs one genuine Elasticsearch 8.x node (the server jar and the transport-netty4 module from
 * Maven Central) in this JVM, bound to 127.0.0.1 only. Started by scripts/es-local.
 *
 * Usage: LocalNode HOME HTTP_PORT [CLUSTER_NAME]
 * HOME receives config/, data/ and logs/. Extra node settings: system properties "es.setting.KEY=VALUE".
 */
public final class LocalNode {

    private LocalNode() {}

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: LocalNode HOME HTTP_PORT [CLUSTER_NAME]");
            System.exit(2);
        }
        Path home = Path.of(args[0]).toAbsolutePath();
        String httpPort = args[1];
        String clusterName = args.length > 2 ? args[2] : "veille-local";
        for (String dir : List.of("config", "data", "logs")) {
            Files.createDirectories(home.resolve(dir));
        }

        Settings.Builder builder = Settings.builder()
            .put("path.home", home.toString())
            .put("path.data", home.resolve("data").toString())
            .put("path.logs", home.resolve("logs").toString())
            .put("cluster.name", clusterName)
            .put("node.name", "veille-local-1")
            .put("discovery.type", "single-node")
            // loopback only: HTTP and transport
            .put("network.host", "127.0.0.1")
            .put("http.port", httpPort)
            .put("transport.port", "0")
            // a fullish developer disk must not turn indices read-only
            .put("cluster.routing.allocation.disk.threshold_enabled", false)
            .put("action.auto_create_index", true)
            // write logs/http.ports and logs/transport.ports once bound
            .put("node.portsfile", true);
        System.getProperties().forEach((k, v) -> {
            String key = k.toString();
            if (key.startsWith("es.setting.")) {
                builder.put(key.substring("es.setting.".length()), v.toString());
            }
        });
        Settings settings = builder.build();

        Path log4jConfig = home.resolve("config").resolve("log4j2.properties");
        Files.writeString(log4jConfig, String.join("\n",
            "status = error",
            "appender.console.type = Console",
            "appender.console.name = console",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n",
            "rootLogger.level = " + System.getProperty("veille.es.loglevel", "info"),
            "rootLogger.appenderRef.console.ref = console",
            ""));
        Environment environment = InternalSettingsPreparer.prepareEnvironment(
            settings, Map.of(), home.resolve("config"), () -> "veille-local-1");
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName("veille-local-1");
        LogConfigurator.configure(environment, true);

        final Node node;
        try {
            node = new VeilleClasspathNode(
                environment, List.of(Netty4Plugin.class, VeilleLocalPlugin.class, LocalPercolatorPlugin.class)
            );
        } catch (Throwable t) {
            t.printStackTrace();
            System.exit(1);
            return;
        }
        CountDownLatch closed = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.prepareForClose();
                node.close();
                node.awaitClose(20, TimeUnit.SECONDS);
            } catch (Exception e) {
                e.printStackTrace();
            } finally {
                closed.countDown();
            }
        }, "veille-es-shutdown"));
        try {
            node.start();
        } catch (Throwable t) {
            // e.g. the port is taken: exit instead of leaving a half-started JVM behind
            t.printStackTrace();
            System.exit(1);
        }
        System.out.println("veille-es-local: node started, http.port=" + httpPort);
        closed.await();
    }
}
