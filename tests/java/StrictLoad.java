// StrictLoad: loads XMI files strictly in Apache UIMA Java and prints one JSON line per file.
// Usage: java -cp uimaj-core.jar:. StrictLoad TYPESYSTEM.xml FILE.xmi...
// A file fails on an unknown type or feature, a dangling xmi:id reference, or an annotation
// (indexed, or only reachable from a relation) without a sofa or with offsets outside its
// sofa text (UTF-16 units). The JSON gives per-type indexed counts and, for each
// org.clinicalnlp.kiwi.type.ModifierRelation, whether both ends resolve.
import java.io.File;
import java.io.FileInputStream;
import java.io.InputStream;
import java.util.ArrayDeque;
import java.util.HashSet;
import java.util.Iterator;
import java.util.Map;
import java.util.Set;
import java.util.TreeMap;

import org.apache.uima.UIMAFramework;
import org.apache.uima.cas.CAS;
import org.apache.uima.cas.FSIterator;
import org.apache.uima.cas.Feature;
import org.apache.uima.cas.FeatureStructure;
import org.apache.uima.cas.Type;
import org.apache.uima.cas.impl.XmiCasDeserializer;
import org.apache.uima.cas.text.AnnotationFS;
import org.apache.uima.resource.metadata.TypeSystemDescription;
import org.apache.uima.util.CasCreationUtils;
import org.apache.uima.util.XMLInputSource;

public class StrictLoad {
    static String q(String s) {
        if (s == null) return "null";
        StringBuilder b = new StringBuilder("\"");
        for (char c : s.toCharArray()) {
            if (c == '"' || c == '\\') b.append('\\').append(c);
            else if (c < 0x20) b.append(String.format("\\u%04x", (int) c));
            else b.append(c);
        }
        return b.append('"').toString();
    }

    public static void main(String[] args) throws Exception {
        TypeSystemDescription tsd = UIMAFramework.getXMLParser()
                .parseTypeSystemDescription(new XMLInputSource(new File(args[0])));
        tsd.resolveImports();
        boolean allOk = true;
        for (int i = 1; i < args.length; i++) {
            String file = args[i];
            String error = null;
            Map<String, Integer> counts = new TreeMap<>();
            int problems = 0, relations = 0, relationEndsOk = 0;
            StringBuilder dump = new StringBuilder();
            try {
                CAS cas = CasCreationUtils.createCas(tsd, null, null);
                try (InputStream in = new FileInputStream(file)) {
                    XmiCasDeserializer.deserialize(in, cas, false);
                }
                Type annType = cas.getTypeSystem().getType(CAS.TYPE_NAME_ANNOTATION);
                Type relType = cas.getTypeSystem().getType("org.clinicalnlp.kiwi.type.ModifierRelation");
                Iterator<CAS> views = cas.getViewIterator();
                Set<Integer> seen = new HashSet<>();
                while (views.hasNext()) {
                    CAS view = views.next();
                    ArrayDeque<FeatureStructure> todo = new ArrayDeque<>();
                    FSIterator<FeatureStructure> it = view.getIndexRepository().getAllIndexedFS(cas.getTypeSystem().getTopType());
                    while (it.hasNext()) {
                        FeatureStructure fs = it.next();
                        counts.merge(fs.getType().getName(), 1, Integer::sum);
                        todo.add(fs);
                    }
                    while (!todo.isEmpty()) {
                        FeatureStructure fs = todo.poll();
                        if (!seen.add(cas.getLowLevelCAS().ll_getFSRef(fs))) continue;
                        if (cas.getTypeSystem().subsumes(annType, fs.getType())) {
                            AnnotationFS a = (AnnotationFS) fs;
                            String text = a.getView() == null ? null : a.getView().getDocumentText();
                            if (text == null || a.getBegin() < 0 || a.getBegin() > a.getEnd() || a.getEnd() > text.length()) problems++;
                        }
                        if (relType != null && fs.getType().getName().equals(relType.getName())) {
                            relations++;
                            FeatureStructure e = fs.getFeatureValue(relType.getFeatureByBaseName("entity"));
                            FeatureStructure m = fs.getFeatureValue(relType.getFeatureByBaseName("modifier"));
                            if (e != null && m != null) relationEndsOk++;
                        }
                        for (Feature f : fs.getType().getFeatures()) {
                            if (!f.getRange().isPrimitive() && !f.getName().equals(CAS.FEATURE_FULL_NAME_SOFA)) {
                                FeatureStructure v = fs.getFeatureValue(f);
                                if (v != null && !(v instanceof org.apache.uima.cas.SofaFS)) todo.add(v);
                            }
                        }
                    }
                }
                String spec = System.getProperty("dump");  // TYPE:FEATURE -> [[begin, end, "value"], ...]
                if (spec != null) {
                    Type dt = cas.getTypeSystem().getType(spec.substring(0, spec.lastIndexOf(':')));
                    Feature df = dt == null ? null : dt.getFeatureByBaseName(spec.substring(spec.lastIndexOf(':') + 1));
                    if (df != null) {
                        FSIterator<FeatureStructure> dit = cas.getIndexRepository().getAllIndexedFS(dt);
                        while (dit.hasNext()) {
                            AnnotationFS a = (AnnotationFS) dit.next();
                            if (dump.length() > 0) dump.append(", ");
                            dump.append("[").append(a.getBegin()).append(", ").append(a.getEnd()).append(", ")
                                .append(q(a.getFeatureValueAsString(df))).append("]");
                        }
                    }
                }
                if (problems > 0) error = problems + " annotations without sofa or with bad offsets";
                if (relations != relationEndsOk) error = (relations - relationEndsOk) + " relations with a missing end";
            } catch (Exception ex) {
                error = ex.getClass().getSimpleName() + ": " + ex.getMessage();
            }
            allOk &= error == null;
            StringBuilder b = new StringBuilder();
            b.append("{\"file\": ").append(q(file)).append(", \"ok\": ").append(error == null)
             .append(", \"error\": ").append(q(error)).append(", \"relations\": ").append(relations)
             .append(", \"dump\": [").append(dump).append("]")
             .append(", \"counts\": {");
            boolean first = true;
            for (Map.Entry<String, Integer> e : counts.entrySet()) {
                if (!first) b.append(", ");
                first = false;
                b.append(q(e.getKey())).append(": ").append(e.getValue());
            }
            System.out.println(b.append("}}"));
        }
        System.exit(allOk ? 0 : 1);
    }
}
