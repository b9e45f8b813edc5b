import Regula
