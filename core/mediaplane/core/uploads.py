"""An upload's declaration, carried by the uploaded object itself.

A REST upload writes nothing to the Kubernetes API until it is finalized: the presigned
POST pins the declaration (sha256, kind, file name, who asked) as object metadata, so the
storage refuses a form that changes it, and finalize creates the MediaAsset from the object
it finds. An upload-url that is never used costs nothing; an object uploaded but never
finalized is removed by the operator's sweep once the grant and a grace period are over.
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import quote, unquote

from pydantic import BaseModel, ConfigDict, ValidationError

from mediaplane.core.tasks import MediaKind

PREFIX = "mediaplane-"  # S3 user metadata keys: x-amz-meta-mediaplane-<field>


class UploadDeclaration(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    sha256: str
    kind: MediaKind
    filename: str
    user: str

    def metadata(self) -> dict[str, str]:
        """User metadata (ASCII, as S3 requires): free text is percent-encoded."""
        return {f"{PREFIX}sha256": self.sha256.lower(), f"{PREFIX}kind": self.kind.value,
                f"{PREFIX}filename": quote(self.filename, safe=""),
                f"{PREFIX}user": quote(self.user, safe="")}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, str]) -> UploadDeclaration | None:
        """The declaration an object was uploaded with; None when it carries none (it was
        not put there through one of our grants)."""
        fields = {key[len(PREFIX):]: value for key, value in metadata.items()
                  if key.lower().startswith(PREFIX)}
        try:
            return cls(sha256=fields["sha256"], kind=MediaKind(fields["kind"]),
                       filename=unquote(fields["filename"]), user=unquote(fields["user"]))
        except (KeyError, ValueError, ValidationError):
            return None
