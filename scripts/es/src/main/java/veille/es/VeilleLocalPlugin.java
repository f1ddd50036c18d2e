package veille.es;

import java.io.IOException;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;
import java.util.function.BiFunction;
import java.util.function.Predicate;
import java.util.function.Supplier;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.analysis.CharArraySet;
import org.apache.lucene.analysis.StopwordAnalyzerBase;
import org.apache.lucene.analysis.TokenStream;
import org.apache.lucene.analysis.core.KeywordTokenizer;
import org.apache.lucene.analysis.core.WhitespaceTokenizer;
import org.apache.lucene.analysis.miscellaneous.ASCIIFoldingFilter;
import org.apache.lucene.analysis.snowball.SnowballFilter;
import org.apache.lucene.analysis.util.ElisionFilter;
import org.apache.lucene.analysis.en.EnglishAnalyzer;
import org.apache.lucene.analysis.es.SpanishAnalyzer;
import org.apache.lucene.analysis.fr.FrenchAnalyzer;
import org.apache.lucene.analysis.de.GermanAnalyzer;
import org.apache.lucene.analysis.it.ItalianAnalyzer;
import org.apache.lucene.analysis.pt.PortugueseAnalyzer;
import org.apache.lucene.util.Version;
import org.elasticsearch.Build;
import org.elasticsearch.client.internal.node.NodeClient;
import org.elasticsearch.cluster.metadata.IndexNameExpressionResolver;
import org.elasticsearch.cluster.node.DiscoveryNodes;
import org.elasticsearch.cluster.service.ClusterService;
import org.elasticsearch.common.io.stream.NamedWriteableRegistry;
import org.elasticsearch.common.settings.ClusterSettings;
import org.elasticsearch.common.settings.IndexScopedSettings;
import org.elasticsearch.common.settings.Settings;
import org.elasticsearch.common.settings.SettingsFilter;
import org.elasticsearch.env.Environment;
import org.elasticsearch.features.NodeFeature;
import org.elasticsearch.index.IndexSettingProvider;
import org.elasticsearch.index.IndexVersions;
import org.elasticsearch.index.analysis.AbstractIndexAnalyzerProvider;
import org.elasticsearch.index.analysis.Analysis;
import org.elasticsearch.index.analysis.AnalyzerProvider;
import org.elasticsearch.index.analysis.NormalizingTokenFilterFactory;
import org.elasticsearch.index.analysis.TokenFilterFactory;
import org.elasticsearch.index.analysis.TokenizerFactory;
import org.elasticsearch.indices.analysis.AnalysisModule.AnalysisProvider;
import org.elasticsearch.plugins.ActionPlugin;
import org.elasticsearch.plugins.AnalysisPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.rest.BaseRestHandler;
import org.elasticsearch.rest.RestController;
import org.elasticsearch.rest.RestHandler;
import org.elasticsearch.rest.RestRequest;
import org.elasticsearch.rest.RestResponse;
import org.elasticsearch.rest.RestStatus;
import org.elasticsearch.xcontent.XContentBuilder;

/**
 * What the local node needs beyond the server jar and transport-netty4, the only Elasticsearch 8
 * modules on Maven Central:
 * - GET / (the rest-root module is not published): name, cluster, version, as the real endpoint;
 * - the Lucene language analyzers under their Elasticsearch names (analysis-common is not
 *   published), built the way Elasticsearch builds them (stopwords / stem_exclusion settings);
 * - a few token filters and tokenizers from analysis-common (asciifolding, elision, snowball;
 *   whitespace, keyword), on the Lucene classes Elasticsearch uses for them;
 * - 0 replicas by default on this single node, unless a template or request says otherwise.
 */
public final class VeilleLocalPlugin extends Plugin implements ActionPlugin, AnalysisPlugin {

    private volatile ClusterService clusterService;

    @Override
    public Collection<?> createComponents(PluginServices services) {
        this.clusterService = services.clusterService();
        return List.of();
    }

    @Override
    public Collection<IndexSettingProvider> getAdditionalIndexSettingProviders(IndexSettingProvider.Parameters parameters) {
        return List.of((indexName, dataStreamName, isTimeSeries, metadata, resolvedAt, templateAndRequest, mappings) ->
            templateAndRequest.hasValue("index.number_of_replicas") || templateAndRequest.hasValue("index.auto_expand_replicas")
                ? Settings.EMPTY
                : Settings.builder().put("index.number_of_replicas", 0).build());
    }

    // ---- analyzers ----

    private static AnalysisProvider<AnalyzerProvider<? extends Analyzer>> language(
        CharArraySet defaultStop,
        BiFunction<CharArraySet, CharArraySet, StopwordAnalyzerBase> ctor
    ) {
        return (indexSettings, env, name, settings) -> new AbstractIndexAnalyzerProvider<StopwordAnalyzerBase>(name, settings) {
            private final StopwordAnalyzerBase analyzer = ctor.apply(
                Analysis.parseStopWords(env, settings, defaultStop),
                Analysis.parseStemExclusion(settings, CharArraySet.EMPTY_SET)
            );

            @Override
            public StopwordAnalyzerBase get() {
                return analyzer;
            }
        };
    }

    @Override
    public Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> getAnalyzers() {
        Map<String, AnalysisProvider<AnalyzerProvider<? extends Analyzer>>> m = new TreeMap<>();
        m.put("english", language(EnglishAnalyzer.getDefaultStopSet(), EnglishAnalyzer::new));
        m.put("french", language(FrenchAnalyzer.getDefaultStopSet(), FrenchAnalyzer::new));
        m.put("spanish", language(SpanishAnalyzer.getDefaultStopSet(), SpanishAnalyzer::new));
        m.put("german", language(GermanAnalyzer.getDefaultStopSet(), GermanAnalyzer::new));
        m.put("italian", language(ItalianAnalyzer.getDefaultStopSet(), ItalianAnalyzer::new));
        m.put("portuguese", language(PortugueseAnalyzer.getDefaultStopSet(), PortugueseAnalyzer::new));
        return m;
    }

    @Override
    public Map<String, AnalysisProvider<TokenFilterFactory>> getTokenFilters() {
        Map<String, AnalysisProvider<TokenFilterFactory>> m = new TreeMap<>();
        m.put("asciifolding", (indexSettings, env, name, settings) -> {
            boolean preserveOriginal = settings.getAsBoolean("preserve_original", false);
            return new NormalizingTokenFilterFactory() {
                @Override
                public String name() {
                    return name;
                }

                @Override
                public TokenStream create(TokenStream in) {
                    return new ASCIIFoldingFilter(in, preserveOriginal);
                }

                @Override
                public TokenStream normalize(TokenStream in) {
                    return new ASCIIFoldingFilter(in, false);
                }
            };
        });
        m.put("elision", (indexSettings, env, name, settings) -> {
            CharArraySet parsed = Analysis.parseArticles(env, settings);
            CharArraySet articles = parsed == null ? FrenchAnalyzer.DEFAULT_ARTICLES : parsed;
            return new NormalizingTokenFilterFactory() {
                @Override
                public String name() {
                    return name;
                }

                @Override
                public TokenStream create(TokenStream in) {
                    return new ElisionFilter(in, articles);
                }
            };
        });
        // Veille's language analyzers stem with Snowball; the Python side stems with the same
        // algorithms (veille/languages.py), so both must build the stemmer from its name alone.
        m.put("snowball", (indexSettings, env, name, settings) -> {
            String language = settings.get("language", "English");
            String stemmer = Character.toUpperCase(language.charAt(0)) + language.substring(1);
            return new TokenFilterFactory() {
                @Override
                public String name() {
                    return name;
                }

                @Override
                public TokenStream create(TokenStream in) {
                    return new SnowballFilter(in, stemmer);
                }
            };
        });
        return m;
    }

    @Override
    public Map<String, AnalysisProvider<TokenizerFactory>> getTokenizers() {
        Map<String, AnalysisProvider<TokenizerFactory>> m = new TreeMap<>();
        m.put("whitespace", (indexSettings, env, name, settings) -> TokenizerFactory.newFactory(name, WhitespaceTokenizer::new));
        m.put("keyword", (indexSettings, env, name, settings) -> TokenizerFactory.newFactory(name, KeywordTokenizer::new));
        return m;
    }

    // ---- GET / ----

    @Override
    public Collection<RestHandler> getRestHandlers(
        Settings settings,
        NamedWriteableRegistry namedWriteableRegistry,
        RestController restController,
        ClusterSettings clusterSettings,
        IndexScopedSettings indexScopedSettings,
        SettingsFilter settingsFilter,
        IndexNameExpressionResolver indexNameExpressionResolver,
        Supplier<DiscoveryNodes> nodesInCluster,
        Predicate<NodeFeature> clusterSupportsFeature
    ) {
        return List.of(new RootHandler());
    }

    private final class RootHandler extends BaseRestHandler {
        @Override
        public String getName() {
            return "veille_local_root_action";
        }

        @Override
        public List<Route> routes() {
            return List.of(new Route(RestRequest.Method.GET, "/"), new Route(RestRequest.Method.HEAD, "/"));
        }

        @Override
        protected RestChannelConsumer prepareRequest(RestRequest request, NodeClient client) throws IOException {
            return channel -> {
                ClusterService cs = clusterService;
                Build build = Build.current();
                XContentBuilder b = channel.newBuilder();
                b.startObject();
                b.field("name", cs.localNode().getName());
                b.field("cluster_name", cs.getClusterName().value());
                b.field("cluster_uuid", cs.state().metadata().clusterUUID());
                b.startObject("version")
                    .field("number", build.qualifiedVersion())
                    .field("build_flavor", "default")
                    .field("build_type", build.type().displayName())
                    .field("build_hash", build.hash())
                    .field("build_date", build.date())
                    .field("build_snapshot", build.isSnapshot())
                    .field("lucene_version", Version.LATEST.toString())
                    .field("minimum_wire_compatibility_version", build.minWireCompatVersion())
                    .field("minimum_index_compatibility_version", build.minIndexCompatVersion())
                    .endObject();
                b.field("tagline", "You Know, for Search");
                b.endObject();
                channel.sendResponse(new RestResponse(RestStatus.OK, b));
            };
        }
    }
}
