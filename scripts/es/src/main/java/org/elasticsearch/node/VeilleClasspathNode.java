package org.elasticsearch.node;

import java.util.Collection;
import java.util.List;

import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.env.Environment;
import org.elasticsearch.plugins.MockPluginsService;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.PluginsService;

/**
 * A real Elasticsearch {@link Node} whose plugins are classes on the classpath (there is no
 * distribution with a modules/ folder here). It lives in this package because the hook that
 * chooses the PluginsService is package-private; the PluginsService is the one Elasticsearch's
 * own test framework uses for classpath plugins. No other service is replaced.
 */
public class VeilleClasspathNode extends Node {

    public VeilleClasspathNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
        super(NodeConstruction.prepareConstruction(environment, new NodeServiceProvider() {
            @Override
            PluginsService newPluginService(Environment env, Settings settings) {
                return new MockPluginsService(settings, env, List.copyOf(plugins));
            }
        }, true));
    }
}
