// Compiles each Groovy file named on the command line, as Jenkins' Groovy does before running it.
def failed = false
args.each { path ->
    try {
        new GroovyShell().parse(new File(path))
        println "ok ${path}"
    } catch (Exception e) {
        failed = true
        println "error ${path}: ${e.message}"
    }
}
System.exit(failed ? 1 : 0)
