"""python -m deployments: register the work pools and deployments on $PREFECT_API_URL."""

from deployments import deploy_all

if __name__ == "__main__":
    for name in deploy_all():
        print(name)
