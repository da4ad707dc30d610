"""The deployment rehearsal (``dataforge rehearse --stack <env>``): each deployable run the way AWS runs
it, from its built artifact, with exactly the wiring the rendered stack declares, fed the events AWS
sends; the AWS APIs are the embedded platform's (moto server).

- :mod:`devkit.rehearse.provision`: the stack's stateful resources created on the moto server under
  the names the stack declares;
- :mod:`devkit.rehearse.lambdas`: each Lambda function unpacked into Lambda's file-system layout and
  invoked in a clean Python process with its declared handler and environment;
- :mod:`devkit.rehearse.events`: the events AWS sends for each trigger the stack declares;
- :mod:`devkit.rehearse.apigw`: API Gateway proxy events for every route of the declared API;
- :mod:`devkit.rehearse.glue`: each Glue job run a trigger starts, from the uploaded script, zip and
  wheels, on local Spark with only the Python modules Glue 5.1 provides (an import hook);
- :mod:`devkit.rehearse.dashboard`: the dashboard container's command with the task definition's
  environment and port, probed as the load balancer and a browser would.
"""
