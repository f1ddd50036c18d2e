package veille.es;

import java.io.IOException;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Objects;

import org.apache.lucene.analysis.Analyzer;
import org.apache.lucene.index.FieldInfo;
import org.apache.lucene.index.LeafReader;
import org.apache.lucene.index.LeafReaderContext;
import org.apache.lucene.index.StoredFieldVisitor;
import org.apache.lucene.index.DirectoryReader;
import org.apache.lucene.index.IndexWriter;
import org.apache.lucene.index.IndexWriterConfig;
import org.apache.lucene.search.ConstantScoreScorer;
import org.apache.lucene.search.ConstantScoreWeight;
import org.apache.lucene.search.DocIdSetIterator;
import org.apache.lucene.search.IndexSearcher;
import org.apache.lucene.search.Query;
import org.apache.lucene.search.QueryVisitor;
import org.apache.lucene.search.ScoreDoc;
import org.apache.lucene.search.ScoreMode;
import org.apache.lucene.search.Sort;
import org.apache.lucene.search.Scorer;
import org.apache.lucene.search.TwoPhaseIterator;
import org.apache.lucene.search.Weight;
import org.apache.lucene.search.BooleanClause;
import org.apache.lucene.store.ByteBuffersDirectory;
import org.apache.lucene.store.Directory;
import org.elasticsearch.TransportVersion;
import org.elasticsearch.TransportVersions;
import org.elasticsearch.common.bytes.BytesArray;
import org.elasticsearch.common.bytes.BytesReference;
import org.elasticsearch.common.document.DocumentField;
import org.elasticsearch.common.io.stream.StreamInput;
import org.elasticsearch.common.io.stream.StreamOutput;
import org.elasticsearch.common.lucene.Lucene;
import org.elasticsearch.common.xcontent.XContentHelper;
import org.elasticsearch.common.xcontent.support.XContentMapValues;
import org.elasticsearch.index.mapper.DocumentParserContext;
import org.elasticsearch.index.mapper.FieldMapper;
import org.elasticsearch.index.mapper.MappedFieldType;
import org.elasticsearch.index.mapper.Mapper;
import org.elasticsearch.index.mapper.MapperBuilderContext;
import org.elasticsearch.index.mapper.ParsedDocument;
import org.elasticsearch.index.mapper.SourceToParse;
import org.elasticsearch.index.mapper.SourceValueFetcher;
import org.elasticsearch.index.mapper.TextSearchInfo;
import org.elasticsearch.index.mapper.ValueFetcher;
import org.elasticsearch.index.query.AbstractQueryBuilder;
import org.elasticsearch.index.query.QueryBuilder;
import org.elasticsearch.index.query.QueryShardException;
import org.elasticsearch.index.query.Rewriteable;
import org.elasticsearch.index.query.SearchExecutionContext;
import org.elasticsearch.plugins.MapperPlugin;
import org.elasticsearch.plugins.Plugin;
import org.elasticsearch.plugins.SearchPlugin;
import org.elasticsearch.search.fetch.FetchSubPhase;
import org.elasticsearch.search.fetch.FetchSubPhaseProcessor;
import org.elasticsearch.search.fetch.StoredFieldsSpec;
import org.elasticsearch.search.lookup.Source;
import org.elasticsearch.xcontent.ToXContent;
import org.elasticsearch.xcontent.XContentBuilder;
import org.elasticsearch.xcontent.XContentFactory;
import org.elasticsearch.xcontent.XContentParser;
import org.elasticsearch.xcontent.XContentType;

/**
 * The percolator for the local node. Elasticsearch's percolator module is not published on Maven
 * Central (neither are its other 8.x modules but transport-netty4), so this plugin, written for
 * Veille, gives the local node the same interface:
 * - the {@code percolator} mapping type: the field holds a query, which is parsed when the
 *   document is indexed (a query Elasticsearch cannot parse is refused with its parse error);
 * - the {@code percolate} query with {@code field} and {@code document} or {@code documents}:
 *   it matches the stored queries that match any of the given documents, parsed with the
 *   index's own mapping into an in-memory Lucene index;
 * - the {@code _percolator_document_slot} hit field: which of the documents each query matched.
 * Unlike the module it has no candidate pre-selection from the queries' extracted terms: every
 * stored query is evaluated for every request, so its cost grows with the number of queries.
 * Results are the same; timings are not the module's (the compose file's Elasticsearch has it).
 */
public final class LocalPercolatorPlugin extends Plugin implements MapperPlugin, SearchPlugin {

    static final String TYPE = "percolator";
    static final String SLOT_FIELD = "_percolator_document_slot";

    @Override
    public Map<String, Mapper.TypeParser> getMappers() {
        return Map.of(TYPE, QueryFieldMapper.PARSER);
    }

    @Override
    public List<QuerySpec<?>> getQueries() {
        return List.of(new QuerySpec<>(PercolateQueryBuilder.NAME, PercolateQueryBuilder::new, PercolateQueryBuilder::fromXContent));
    }

    @Override
    public List<FetchSubPhase> getFetchSubPhases(FetchPhaseConstructionContext context) {
        return List.of(LocalPercolatorPlugin::slotProcessor);
    }

    // ---- the percolator field ----

    static final class QueryFieldType extends MappedFieldType {
        QueryFieldType(String name) {
            super(name, false, false, false, TextSearchInfo.NONE, Map.of());
        }

        @Override
        public String typeName() {
            return TYPE;
        }

        @Override
        public ValueFetcher valueFetcher(SearchExecutionContext context, String format) {
            return SourceValueFetcher.identity(name(), context, format);
        }

        @Override
        public Query termQuery(Object value, SearchExecutionContext context) {
            throw new QueryShardException(context, "percolator field [" + name() + "] is searched with a percolate query");
        }
    }

    static final class QueryFieldMapper extends FieldMapper {
        static final TypeParser PARSER = new TypeParser((name, parserContext) -> new Builder(name));

        static final class Builder extends FieldMapper.Builder {
            Builder(String name) {
                super(name);
            }

            @Override
            protected Parameter<?>[] getParameters() {
                return new Parameter<?>[0];
            }

            @Override
            public FieldMapper build(MapperBuilderContext context) {
                return new QueryFieldMapper(
                    name(),
                    new QueryFieldType(context.buildFullName(name())),
                    multiFieldsBuilder.build(this, context),
                    copyTo
                );
            }
        }

        QueryFieldMapper(String simpleName, MappedFieldType type, MultiFields multiFields, CopyTo copyTo) {
            super(simpleName, type, multiFields, copyTo);
        }

        @Override
        protected void parseCreateField(DocumentParserContext context) throws IOException {
            // Parsed to refuse what Elasticsearch cannot parse; kept in _source, read back there.
            // Within the query, "a.b" is a field name, not an object path: no dot expansion.
            boolean wasWithinLeaf = context.path().isWithinLeafObject();
            context.path().setWithinLeafObject(true);
            try {
                AbstractQueryBuilder.parseTopLevelQuery(context.parser());
            } finally {
                context.path().setWithinLeafObject(wasWithinLeaf);
            }
        }

        @Override
        public FieldMapper.Builder getMergeBuilder() {
            return new Builder(simpleName()).init(this);
        }

        @Override
        protected String contentType() {
            return TYPE;
        }
    }

    // ---- the percolate query ----

    static final class PercolateQueryBuilder extends AbstractQueryBuilder<PercolateQueryBuilder> {
        static final String NAME = "percolate";

        private final String field;
        private final List<BytesReference> documents;

        PercolateQueryBuilder(String field, List<BytesReference> documents) {
            this.field = Objects.requireNonNull(field, "[percolate] needs a field");
            this.documents = List.copyOf(documents);
        }

        PercolateQueryBuilder(StreamInput in) throws IOException {
            super(in);
            field = in.readString();
            documents = in.readCollectionAsList(StreamInput::readBytesReference);
        }

        static PercolateQueryBuilder fromXContent(XContentParser parser) throws IOException {
            String field = null;
            List<BytesReference> documents = new ArrayList<>();
            float boost = DEFAULT_BOOST;
            String queryName = null;
            String name = null;
            for (XContentParser.Token token = parser.nextToken(); token != XContentParser.Token.END_OBJECT; token = parser.nextToken()) {
                if (token == XContentParser.Token.FIELD_NAME) {
                    name = parser.currentName();
                } else if ("document".equals(name) && token == XContentParser.Token.START_OBJECT) {
                    documents.add(copy(parser));
                } else if ("documents".equals(name) && token == XContentParser.Token.START_ARRAY) {
                    while (parser.nextToken() != XContentParser.Token.END_ARRAY) {
                        documents.add(copy(parser));
                    }
                } else if ("field".equals(name)) {
                    field = parser.text();
                } else if ("boost".equals(name)) {
                    boost = parser.floatValue();
                } else if ("_name".equals(name)) {
                    queryName = parser.text();
                } else {
                    throw new IllegalArgumentException("[percolate] does not support [" + name + "]");
                }
            }
            if (field == null || documents.isEmpty()) {
                throw new IllegalArgumentException("[percolate] needs [field] and [document] or [documents]");
            }
            return new PercolateQueryBuilder(field, documents).boost(boost).queryName(queryName);
        }

        private static BytesReference copy(XContentParser parser) throws IOException {
            try (XContentBuilder builder = XContentFactory.jsonBuilder()) {
                builder.copyCurrentStructure(parser);
                return BytesReference.bytes(builder);
            }
        }

        @Override
        protected void doWriteTo(StreamOutput out) throws IOException {
            out.writeString(field);
            out.writeCollection(documents, StreamOutput::writeBytesReference);
        }

        @Override
        protected void doXContent(XContentBuilder builder, ToXContent.Params params) throws IOException {
            builder.startObject(NAME);
            builder.field("field", field);
            builder.startArray("documents");
            for (BytesReference document : documents) {
                builder.rawValue(document.streamInput(), XContentType.JSON);
            }
            builder.endArray();
            printBoostAndQueryName(builder);
            builder.endObject();
        }

        @Override
        protected Query doToQuery(SearchExecutionContext context) throws IOException {
            if (!(context.getFieldType(field) instanceof QueryFieldType)) {
                throw new QueryShardException(context, "field [" + field + "] is not a percolator field");
            }
            // The documents go into one in-memory Lucene index (a segment of their own, in order,
            // so a document's position is its doc id), analysed with this index's mapping.
            Analyzer analyzer = context.getIndexAnalyzer(unindexed -> Lucene.KEYWORD_ANALYZER);
            Directory directory = new ByteBuffersDirectory();
            try (IndexWriter writer = new IndexWriter(directory, new IndexWriterConfig(analyzer))) {
                for (int slot = 0; slot < documents.size(); slot++) {
                    ParsedDocument parsed = context.parseDocument(
                        new SourceToParse("_percolated_" + slot, documents.get(slot), XContentType.JSON)
                    );
                    writer.addDocument(parsed.rootDoc());
                }
                writer.forceMerge(1);
            }
            IndexSearcher searcher = new IndexSearcher(DirectoryReader.open(directory));
            searcher.setQueryCache(null);
            // Stored queries are built against the mapping alone: the percolator index holds no
            // article, so "does this field have values here" must not drop fields from a query.
            SearchExecutionContext forStoredQueries = new SearchExecutionContext(context) {
                @Override
                public boolean fieldExistsInIndex(String name) {
                    return true;
                }
            };
            return new SlotQuery(field, searcher, documents.size(), forStoredQueries);
        }

        @Override
        protected boolean doEquals(PercolateQueryBuilder other) {
            return field.equals(other.field) && documents.equals(other.documents);
        }

        @Override
        protected int doHashCode() {
            return Objects.hash(field, documents);
        }

        @Override
        public String getWriteableName() {
            return NAME;
        }

        @Override
        public TransportVersion getMinimalSupportedVersion() {
            return TransportVersions.ZERO;
        }
    }

    /** Matches the stored queries that match at least one of the in-memory documents. */
    static final class SlotQuery extends Query {
        private final String field;
        private final IndexSearcher documents;
        private final int count;
        private final SearchExecutionContext context;

        SlotQuery(String field, IndexSearcher documents, int count, SearchExecutionContext context) {
            this.field = field;
            this.documents = documents;
            this.count = count;
            this.context = context;
        }

        /** The positions of the documents that the query stored in {@code doc} matches. */
        List<Object> slots(LeafReader reader, int doc) throws IOException {
            SourceVisitor visitor = new SourceVisitor();
            reader.storedFields().document(doc, visitor);
            if (visitor.source == null) {
                return List.of();
            }
            Object stored = XContentMapValues.extractValue(field, Source.fromBytes(visitor.source).source());
            if (!(stored instanceof Map<?, ?> map)) {
                return List.of();
            }
            Query query;
            try (XContentBuilder builder = XContentFactory.jsonBuilder().map(castMap(map))) {
                try (
                    XContentParser parser = XContentHelper.createParserNotCompressed(
                        context.getParserConfig(),
                        BytesReference.bytes(builder),
                        XContentType.JSON
                    )
                ) {
                    QueryBuilder parsed = AbstractQueryBuilder.parseTopLevelQuery(parser);
                    query = Rewriteable.rewrite(parsed, context, true).toQuery(context);
                }
            }
            List<Object> matched = new ArrayList<>();
            for (ScoreDoc hit : documents.search(query, count, Sort.INDEXORDER).scoreDocs) {
                matched.add(hit.doc);
            }
            return matched;
        }

        @SuppressWarnings("unchecked")
        private static Map<String, Object> castMap(Map<?, ?> map) {
            return (Map<String, Object>) map;
        }

        @Override
        public Weight createWeight(IndexSearcher searcher, ScoreMode scoreMode, float boost) {
            return new ConstantScoreWeight(this, boost) {
                @Override
                public Scorer scorer(LeafReaderContext leaf) {
                    DocIdSetIterator all = DocIdSetIterator.all(leaf.reader().maxDoc());
                    TwoPhaseIterator matching = new TwoPhaseIterator(all) {
                        @Override
                        public boolean matches() throws IOException {
                            return slots(leaf.reader(), all.docID()).isEmpty() == false;
                        }

                        @Override
                        public float matchCost() {
                            return 1000f;
                        }
                    };
                    return new ConstantScoreScorer(this, score(), scoreMode, matching);
                }

                @Override
                public boolean isCacheable(LeafReaderContext leaf) {
                    return false;
                }
            };
        }

        @Override
        public void visit(QueryVisitor visitor) {
            visitor.visitLeaf(this);
        }

        @Override
        public String toString(String defaultField) {
            return "percolate(" + field + ", " + count + " documents)";
        }

        @Override
        public boolean equals(Object other) {
            return this == other;
        }

        @Override
        public int hashCode() {
            return System.identityHashCode(this);
        }
    }

    private static final class SourceVisitor extends StoredFieldVisitor {
        BytesArray source;

        @Override
        public Status needsField(FieldInfo fieldInfo) {
            if (source != null) {
                return Status.STOP;
            }
            return "_source".equals(fieldInfo.name) ? Status.YES : Status.NO;
        }

        @Override
        public void binaryField(FieldInfo fieldInfo, byte[] value) {
            source = new BytesArray(value);
        }
    }

    // ---- _percolator_document_slot in the hits ----

    private static FetchSubPhaseProcessor slotProcessor(org.elasticsearch.search.fetch.FetchContext fetchContext) {
        SlotQuery[] found = new SlotQuery[1];
        fetchContext.query().visit(new QueryVisitor() {
            @Override
            public void visitLeaf(Query query) {
                if (query instanceof SlotQuery slotQuery) {
                    found[0] = slotQuery;
                }
            }

            @Override
            public QueryVisitor getSubVisitor(BooleanClause.Occur occur, Query parent) {
                return this;
            }
        });
        if (found[0] == null) {
            return null;
        }
        SlotQuery query = found[0];
        return new FetchSubPhaseProcessor() {
            @Override
            public void setNextReader(LeafReaderContext leaf) {}

            @Override
            public void process(FetchSubPhase.HitContext hit) throws IOException {
                List<Object> slots = query.slots(hit.reader(), hit.docId());
                if (slots.isEmpty() == false) {
                    hit.hit().setDocumentField(SLOT_FIELD, new DocumentField(SLOT_FIELD, slots));
                }
            }

            @Override
            public StoredFieldsSpec storedFieldsSpec() {
                return StoredFieldsSpec.NO_REQUIREMENTS;
            }
        };
    }
}
