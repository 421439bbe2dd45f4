// A stand-in for spice-1.0.jar's edu.anu.spice classes (the real one needs CoreNLP, which
// tests cannot download). Same entry points as the real jar: SpiceScorer.main(args), and
// new SpiceArguments(args) / new SpiceScorer().scoreBatch(args) / scorer.stats.toJSONString()
// for the Java 15+ launcher. Deterministic scores: f = shared distinct words / test words;
// an empty test gives null (as SPICE writes NaN); a test "CRASH" makes it fail like a JVM does,
// a test "SLEEP" makes it hang for two minutes (to test cancelling).
// The tests split this file into one source per class before compiling.
// ---- SpiceArguments.java
package edu.anu.spice;

public class SpiceArguments {
    public String inputPath;
    public String outputPath;
    public String cache;
    public boolean subset;
    public boolean silent;

    SpiceArguments(String[] args) {
        inputPath = args[0];
        for (int i = 1; i < args.length; i++) {
            if (args[i].equals("-out")) { outputPath = args[++i]; }
            else if (args[i].equals("-cache")) { cache = args[++i]; }
            else if (args[i].equals("-subset")) { subset = true; }
            else if (args[i].equals("-silent")) { silent = true; }
            else { System.err.println("Unknown option " + args[i]); System.exit(1); }
        }
    }
}
// ---- SpiceStats.java
package edu.anu.spice;

public class SpiceStats {
    private final String json;
    SpiceStats(String json) { this.json = json; }
    public String toJSONString() { return json; }
}
// ---- SpiceScorer.java
package edu.anu.spice;

import java.io.FileReader;
import java.io.FileWriter;
import java.util.Arrays;
import java.util.HashSet;
import java.util.Set;
import org.json.simple.JSONArray;
import org.json.simple.JSONObject;
import org.json.simple.parser.JSONParser;

public class SpiceScorer {
    public SpiceStats stats;

    SpiceScorer() {}

    public static void main(String[] args) throws Exception {
        SpiceArguments parsed = new SpiceArguments(args);
        SpiceScorer scorer = new SpiceScorer();
        scorer.scoreBatch(parsed);
        if (parsed.outputPath != null) {
            // The real jar pretty-prints here with Nashorn; a fake can just write.
            try (FileWriter out = new FileWriter(parsed.outputPath)) { out.write(scorer.stats.toJSONString()); }
        }
    }

    public void scoreBatch(SpiceArguments args) throws Exception {
        if (!args.subset || !args.silent || args.cache == null) {
            System.err.println("fake SPICE expects -subset -silent -cache");
            System.exit(4);
        }
        if (!new java.io.File(args.cache).isDirectory()) {
            System.err.println("cache folder missing: " + args.cache);
            System.exit(5);
        }
        JSONArray input = (JSONArray) new JSONParser().parse(new FileReader(args.inputPath));
        StringBuilder out = new StringBuilder("[");
        for (int k = 0; k < input.size(); k++) {
            JSONObject item = (JSONObject) input.get(k);
            String test = (String) item.get("test");
            String ref = (String) ((JSONArray) item.get("refs")).get(0);
            if (test.equals("SLEEP")) { Thread.sleep(120000); }
            if (test.equals("CRASH")) {
                System.err.println("Exception in thread main: java.lang.IllegalStateException: boom");
                System.exit(1);
            }
            Set<String> testWords = new HashSet<>(Arrays.asList(test.trim().split("\\s+")));
            testWords.remove("");
            Set<String> refWords = new HashSet<>(Arrays.asList(ref.trim().split("\\s+")));
            String f = "null";
            if (!testWords.isEmpty()) {
                int shared = 0;
                for (String w : testWords) { if (refWords.contains(w)) { shared++; } }
                f = Double.toString((double) shared / testWords.size());
            }
            // Reversed order: the caller must map results by image_id, not by position.
            String entry = "{\"image_id\":" + item.get("image_id") + ",\"scores\":{\"All\":{\"f\":" + f
                + ",\"pr\":0.0,\"re\":0.0,\"tp\":0,\"fp\":0,\"fn\":0,\"numImages\":1},"
                + "\"Color\":{\"f\":null,\"pr\":null,\"re\":null,\"tp\":0,\"fp\":0,\"fn\":0,\"numImages\":1}}}";
            out.insert(1, k == 0 ? entry : entry + ",");
        }
        stats = new SpiceStats(out.append("]").toString());
    }
}
