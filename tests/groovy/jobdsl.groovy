// Runs a Job DSL script against a recording stand-in for the Job DSL API and prints the
// jobs it defines as JSON: what each job would be configured with.
//   groovy jobdsl.groovy JOBS_SCRIPT WORKSPACE

// groovy-json is a separate jar; this is all the JSON the output needs.
String toJson(Object value) {
    if (value instanceof Map) {
        return '{' + value.collect { k, v -> toJson(k.toString()) + ':' + toJson(v) }.join(',') + '}'
    }
    if (value instanceof List) {
        return '[' + value.collect { toJson(it) }.join(',') + ']'
    }
    if (value == null) {
        return 'null'
    }
    String text = value.toString()
    return '"' + text.replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n') + '"'
}

class Recorder {
    Map calls = [:]

    def methodMissing(String name, Object argsObject) {
        List values = argsObject as List
        Map entry = [:]
        if (values && values[-1] instanceof Closure) {
            Recorder child = new Recorder()
            Closure body = (Closure) values[-1].clone()
            body.delegate = child
            body.resolveStrategy = Closure.DELEGATE_FIRST
            body.call()
            entry.body = child.calls
            values = values.size() > 1 ? values[0..-2] : []
        }
        entry.args = values.collect { it instanceof List ? it.collect { v -> v.toString() } : it.toString() }
        calls.get(name, []) << entry
        return null
    }
}

def jobs = []
def script = new GroovyShell(new Binding([WORKSPACE: args[1]])).parse(new File(args[0]))
script.metaClass.pipelineJob = { String name, Closure body ->
    Recorder recorder = new Recorder()
    body.delegate = recorder
    body.resolveStrategy = Closure.DELEGATE_FIRST
    body.call()
    jobs << [name: name, dsl: recorder.calls]
}
script.run()
println toJson(jobs)
