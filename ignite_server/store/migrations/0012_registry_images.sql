-- The images the platform keeps in its registry, by repository and manifest
-- digest, with the blobs (config and layers) each one holds: what an
-- organization's images take (its quota counts every blob once), and what
-- garbage collection may remove once no version names the image.
CREATE TABLE registry_images (
    repository    text   NOT NULL,
    digest        text   NOT NULL,
    -- From the repository's path, ignite/<org>/...; '' for anything else.
    organization  text   NOT NULL,
    -- {"sha256:…": bytes} of the manifest's config and layers.
    blobs         jsonb  NOT NULL,
    created_at_ms bigint NOT NULL,
    PRIMARY KEY (repository, digest)
);

CREATE INDEX registry_images_by_organization ON registry_images (organization);
