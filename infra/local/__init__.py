"""The local cloud: AWS played on one machine for vodpipe (rules in ``docs/local-cloud.md``).

One package per AWS service it plays; ``cloud.py`` composes and starts them in order:

* ``emulator/``: the AWS APIs (moto server), with DynamoDB's atomic conditional writes;
* ``iam/``: IAM, every call checked against its principal's role; S3 POST policies;
* ``cloudformation/``: the template resolved, the provisioning plan and its execution;
* ``awslambda/``: Lambda, functions from their deployment package, event sources, schedules;
* ``apigateway/``: API Gateway, its route table, SigV4 and Cognito authorizers, the console;
* ``ecs/``: ECS, the transcoder service's tasks, the agent, Application Auto Scaling;
* ``cloudwatch/``: CloudWatch, logs and EMF metrics, alarms, percentiles, ``AWS/SQS`` metrics;
* ``cli/``: the ``vodpipe`` command and its client; ``drills/``: bench, load, rate control.
"""
