// Job DSL seed script: one pipeline job per domain file, replacing the original's hand-made jobs.
// Run it from a seed job whose workspace is a checkout of this repository; it reads domains/.
// Jobs are named after the domain, so the original trigger URL /job/<domain>/build still works.
def repository = binding.variables.get('TOMCAT_CD_REPO') ?: 'git@gitlab.example.com:ops/tomcat-cd.git'

def domainFiles = new File("${WORKSPACE}/domains").listFiles()
    .findAll { it.name.endsWith('.yaml') }
    .sort { it.name }

domainFiles.each { file ->
    def domain = file.name - '.yaml'
    pipelineJob(domain) {
        description("Deploy ${domain} (generated from domains/${file.name} by jenkins/jobs.groovy; edits here are overwritten)")
        logRotator {
            numToKeep(200)
        }
        parameters {
            stringParam('VERSION', '', "the developers' version, e.g. v1.2.0")
            choiceParam('TYPE', ['apply', 'delete', 'promote'],
                        'apply: deploy VERSION; delete: remove the site; promote: develop\'s tested VERSION to master')
            choiceParam('BRANCH', ['develop', 'master'], 'develop = test, master = production')
        }
        definition {
            cpsScm {
                scm {
                    git {
                        remote {
                            url(repository)
                            credentials('tomcat-cd-git')
                        }
                        branch('main')
                    }
                }
                scriptPath('jenkins/Jenkinsfile')
                lightweight(true)
            }
        }
    }
}
