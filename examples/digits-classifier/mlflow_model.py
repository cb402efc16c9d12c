"""The MLflow model, defined from code (MLflow runs this file when it loads the model).

Saved with the model next to net.py, so no pickled Python object is involved.
"""

from mlflow.models import set_model
from net import DigitsClassifier

set_model(DigitsClassifier())
