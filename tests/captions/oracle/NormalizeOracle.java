// Test oracle: METEOR 1.5's own normaliser, called through the jar on the class path.
// Reads one caption per line (UTF-8) and prints what the scorer aligns: the normalised,
// lower-cased line.  Run: java -cp meteor-1.5.jar NormalizeOracle.java < captions.txt
import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.lang.reflect.Method;

public class NormalizeOracle {
    public static void main(String[] args) throws Exception {
        Method normalize = Class.forName("edu.cmu.meteor.util.Normalizer")
                .getMethod("normalizeLine", String.class, int.class, boolean.class);
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, "UTF-8"));
        PrintStream out = new PrintStream(System.out, true, "UTF-8");
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            // Language 0 is English; true keeps punctuation (the -norm flag).
            out.println(((String) normalize.invoke(null, line, 0, true)).toLowerCase());
        }
    }
}
